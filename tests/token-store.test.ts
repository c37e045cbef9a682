import { mkdtempSync } from "node:fs";
import { readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { uniformGenerator } from "../src/util/random.js";
import { readTokenStore, TokenStoreWriter, writeTokenStore, type TokenSequence } from "../src/indexer/token-store.js";
import { expectRefused } from "./helpers/refusal.js";

const dir = mkdtempSync(path.join(tmpdir(), "token-store-"));
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
const file = (name: string): string => path.join(dir, name);
const tempFiles = async (): Promise<string[]> => (await readdir(dir)).filter((f) => f.endsWith(".tmp"));

function randomSequences(count: number, seed: number, first = 0): TokenSequence[] {
  const uniform = uniformGenerator(seed);
  return Array.from({ length: count }, (_, i) => ({
    ordinal: first + i,
    // Lengths 0..63 (empty sequences included), ids up to GPT-2's vocabulary size.
    tokens: Array.from({ length: Math.floor(uniform() * 64) }, () => Math.floor(uniform() * 50257)),
  }));
}

describe("token store", () => {
  const sequences = randomSequences(300, 1);
  const total = sequences.reduce((sum, s) => sum + s.tokens.length, 0);

  it("round-trips every sequence, as views into one buffer", async () => {
    const written = await writeTokenStore(file("tokens.bin"), sequences);
    expect(written).toMatchObject({ count: 300, totalTokens: total });
    const store = await readTokenStore(file("tokens.bin"));
    expect(store).toMatchObject({ count: 300, totalTokens: total, checksum: written.checksum });
    for (const s of sequences) expect(Array.from(store.tokens(s.ordinal))).toEqual(s.tokens);
    expect(store.tokens(0).buffer).toBe(store.tokens(299).buffer);
    expect(() => store.tokens(300)).toThrow(/no sequence with ordinal 300/);
    expect(() => store.tokens(-1)).toThrow(/no sequence with ordinal -1/);
  });

  it("accepts async sources and several appends (one per shard) with the same result", async () => {
    const writer = await TokenStoreWriter.open(file("streamed.bin"));
    await writer.append(sequences.slice(0, 120));
    async function* shard(): AsyncGenerator<TokenSequence> {
      yield* sequences.slice(120);
    }
    await writer.append(shard());
    await writer.finish();
    expect(await readFile(file("streamed.bin"))).toEqual(await readFile(file("tokens.bin")));
  });

  it("stages long sequences across several writes", async () => {
    const long = [
      { ordinal: 0, tokens: Array.from({ length: 2_500_000 }, (_, i) => i % 50257) },
      { ordinal: 1, tokens: [7] },
    ];
    await writeTokenStore(file("long.bin"), long);
    const store = await readTokenStore(file("long.bin"));
    expect(store.tokens(0).length).toBe(2_500_000);
    expect(store.tokens(0)[2_499_999]).toBe(2_499_999 % 50257);
    expect(Array.from(store.tokens(1))).toEqual([7]);
  });

  it("refuses ordinals out of order and invalid token ids, leaving no file", async () => {
    await expect(writeTokenStore(file("bad.bin"), randomSequences(3, 2, 1))).rejects.toThrow(/got ordinal 1 where 0 was expected/);
    const skipping = [...randomSequences(2, 3), ...randomSequences(1, 4, 3)];
    await expect(writeTokenStore(file("bad.bin"), skipping)).rejects.toThrow(/got ordinal 3 where 2 was expected/);
    await expect(writeTokenStore(file("bad.bin"), [{ ordinal: 0, tokens: [1, -2] }])).rejects.toThrow(/invalid token id -2/);
    await expect(writeTokenStore(file("bad.bin"), [{ ordinal: 0, tokens: [1.5] }])).rejects.toThrow(/invalid token id 1.5/);
    await expect(writeTokenStore(file("bad.bin"), [{ ordinal: 0, tokens: [2 ** 31] }])).rejects.toThrow(/invalid token id/);
    await expect(readdir(dir)).resolves.not.toContain("bad.bin");
    expect(await tempFiles()).toEqual([]);
  });

  it("an aborted writer leaves the previous store intact", async () => {
    const before = await readFile(file("tokens.bin"));
    const writer = await TokenStoreWriter.open(file("tokens.bin"));
    await writer.append(randomSequences(10, 5));
    await writer.abort();
    expect(await readFile(file("tokens.bin"))).toEqual(before);
    expect(await tempFiles()).toEqual([]);
  });

  describe("refuses damaged files, naming them", () => {
    const damaged = file("damaged.bin");
    async function damage(change: (bytes: Buffer) => Buffer): Promise<void> {
      await writeFile(damaged, change(await readFile(file("tokens.bin"))));
    }

    it("flipped payload byte", async () => {
      await damage((b) => {
        b[200] ^= 1;
        return b;
      });
      await expectRefused(readTokenStore(damaged), damaged, /^corrupt token store .*payload checksum mismatch/);
      await expect(readTokenStore(damaged, { verify: false })).resolves.toMatchObject({ count: 300 });
    });

    it("flipped header byte", async () => {
      await damage((b) => {
        b[17] ^= 1;
        return b;
      });
      await expectRefused(readTokenStore(damaged), damaged, /^corrupt token store .*header checksum mismatch/);
    });

    it("truncated, trailing bytes, wrong magic, unknown version, missing", async () => {
      await damage((b) => b.subarray(0, b.length - 1));
      await expectRefused(readTokenStore(damaged, { verify: false }), damaged, /^truncated token store .*promises 300 sequences/);
      await damage((b) => b.subarray(0, 50));
      await expectRefused(readTokenStore(damaged), damaged, /^truncated token store/);
      await damage((b) => Buffer.concat([b, Buffer.alloc(8)]));
      await expectRefused(readTokenStore(damaged), damaged, /8 unexpected bytes/);
      await damage((b) => {
        b.write("IGVECT01", 0, "latin1");
        return b;
      });
      await expectRefused(readTokenStore(damaged), damaged, /is not a token store/);
      await damage((b) => {
        b.writeUInt32LE(9, 8);
        return b;
      });
      await expectRefused(readTokenStore(damaged), damaged, /unsupported token store version 9/);
      await expectRefused(readTokenStore(file("missing.bin")), file("missing.bin"), /cannot open token store/);
    });
  });
});
