import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readCorpus } from "../src/corpus/corpus.js";
import { readJsonlObjects } from "../src/corpus/jsonl.js";
import { collect, refusal } from "./helpers/refusal.js";

let tmp: string;
let fileCount = 0;
beforeAll(() => {
  tmp = mkdtempSync(path.join(tmpdir(), "corpus-gzip-test-"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Writes `content` as a plain .jsonl and as its gzipped .jsonl.gz; returns both paths. */
function pair(content: string): { plain: string; gz: string } {
  const base = path.join(tmp, `file-${fileCount++}.jsonl`);
  writeFileSync(base, content);
  writeFileSync(`${base}.gz`, gzipSync(content));
  return { plain: base, gz: `${base}.gz` };
}

function rawFile(name: string, bytes: Uint8Array | string): string {
  const file = path.join(tmp, name);
  writeFileSync(file, bytes);
  return file;
}

describe("gzipped JSONL", () => {
  it("reads the same documents with the same line numbers as the plain file", async () => {
    const content = '\uFEFF{"id": "a", "text": "first"}\r\n\n  \n{"id": 2, "tokens": [1, 2, 3]}\n{"id": "c", "text": "no final line break"}';
    const { plain, gz } = pair(content);
    const docs = await collect(readCorpus(gz));
    expect(docs).toEqual(await collect(readCorpus(plain)));
    expect(docs.map((d) => [d.id, d.line])).toEqual([
      ["a", 1],
      ["2", 4],
      ["c", 5],
    ]);
  });

  it("splits lines across decompressed chunks", async () => {
    const lines = Array.from({ length: 3000 }, (_, i) => JSON.stringify({ id: `d${i}`, text: "word ".repeat(i % 50) }));
    const { gz } = pair(lines.join("\n") + "\n");
    const docs = await collect(readCorpus(gz));
    expect(docs.length).toBe(3000);
    expect(docs[2999]).toEqual({ id: "d2999", line: 3000, text: "word ".repeat(2999 % 50) });
  });

  it("names the line of a bad record inside a gzipped file", async () => {
    const { gz } = pair('{"id": "a", "text": "ok"}\n{"id": "a", "text": "again"}\n');
    const error = await refusal(collect(readCorpus(gz)));
    expect(error.message).toBe(`${gz}, line 2: duplicate id "a" (first used on line 1)`);
    const broken = pair('{"id": "a", "text": "ok"}\n{not json}\n').gz;
    expect((await refusal(collect(readJsonlObjects(broken)))).message).toMatch(new RegExp(`^${broken.replace(/[.\\]/g, "\\$&")}, line 2: not valid JSON`));
  });

  it("applies the line limit to decompressed bytes", async () => {
    const { gz } = pair(`{"id": "a", "text": "${"x".repeat(200)}"}\n`);
    const error = await refusal(collect(readJsonlObjects(gz, { maxLineBytes: 100 })));
    expect(error.message).toMatch(/line 1: longer than 100 bytes/);
  });

  it("rejects a .gz file that is not gzip data, or is cut short", async () => {
    const notGzip = rawFile("plain.jsonl.gz", '{"id": "a", "text": "not compressed"}\n');
    expect((await refusal(collect(readCorpus(notGzip)))).message).toMatch(/^.*plain\.jsonl\.gz: not valid gzip data \(/);
    const whole = gzipSync(Array.from({ length: 200 }, (_, i) => JSON.stringify({ id: i, text: `document ${i}` })).join("\n"));
    const cut = rawFile("cut.jsonl.gz", whole.subarray(0, whole.length - 20));
    expect((await refusal(collect(readCorpus(cut)))).message).toMatch(/cut\.jsonl\.gz: not valid gzip data \(unexpected end of file\)/);
  });

  it("names a missing .gz file", async () => {
    const missing = path.join(tmp, "missing.jsonl.gz");
    expect((await refusal(collect(readCorpus(missing)))).message).toMatch(/missing\.jsonl\.gz: cannot read \(ENOENT/);
  });

  it("stops reading when the consumer stops early", async () => {
    const lines = Array.from({ length: 5000 }, (_, i) => JSON.stringify({ id: i, text: `document ${i}` }));
    const { gz } = pair(lines.join("\n"));
    for await (const doc of readCorpus(gz)) {
      expect(doc.id).toBe("0");
      break;
    }
  });
});
