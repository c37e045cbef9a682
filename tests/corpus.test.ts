import { execFileSync } from "node:child_process";
import { createWriteStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CorpusDocument, readCorpus } from "../src/corpus/corpus.js";
import { readQueries } from "../src/corpus/queries.js";
import { readSequences } from "../src/corpus/sequences.js";
import { windowSequences } from "../src/corpus/windows.js";
import { loadTokenizer, type Tokenizer } from "../src/tokenizer/tokenizer.js";
import { InputError } from "../src/util/errors.js";
import { collect, refusal } from "./helpers/refusal.js";
import { fixturePath } from "./helpers/fixtures.js";

const VOCAB = 50257;

let tmp: string;
let tokenizer: Tokenizer;
let fileCount = 0;
beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), "corpus-test-"));
  tokenizer = await loadTokenizer(fixturePath("gpt2-tiny"));
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A new file in the test folder with the given content. */
function tempFile(content: string | Uint8Array): string {
  const file = path.join(tmp, `file-${fileCount++}.jsonl`);
  writeFileSync(file, content);
  return file;
}

const fixtureLines = (model: string, file: string): Record<string, unknown>[] =>
  readFileSync(fixturePath(model, file), "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as Record<string, unknown>);

describe("fixture corpora and queries", () => {
  it.each([
    { model: "gpt2-tiny", documents: 48, length: 24, queries: 4 },
    { model: "gpt2-tiny-legacy", documents: 16, length: 16, queries: 2 },
  ])("$model: $documents documents of $length tokens, $queries queries", async ({ model, documents, length, queries }) => {
    const train = fixturePath(model, "train.jsonl");
    const expected = fixtureLines(model, "train.jsonl");
    const docs = await collect(readCorpus(train, { vocabSize: VOCAB }));
    expect(docs).toEqual(expected.map((doc, i) => ({ id: doc.id, line: i + 1, tokens: doc.tokens })));
    expect(docs.every((doc) => doc.tokens?.length === length)).toBe(true);

    const sequences = await collect(readSequences(train, tokenizer, { contextLength: 64 }));
    expect(sequences.map((s) => [s.ordinal, s.externalId, s.offset])).toEqual(expected.map((doc, i) => [i, doc.id, 0]));
    expect(sequences.length).toBe(documents);

    const expectedQueries = fixtureLines(model, "queries.jsonl");
    const read = await readQueries(fixturePath(model, "queries.jsonl"), tokenizer, { contextLength: 64 });
    expect(read.length).toBe(queries);
    expect(read).toEqual(expectedQueries.map((q, i) => ({ id: q.id, line: i + 1, promptTokens: q.prompt_tokens, completionTokens: q.completion_tokens })));
  });

  it("windows the fixture documents when the context is shorter, numbering sequences in order", async () => {
    const sequences = await collect(readSequences(fixturePath("gpt2-tiny", "train.jsonl"), tokenizer, { contextLength: 10 }));
    const first = fixtureLines("gpt2-tiny", "train.jsonl")[0] as { id: string; tokens: number[] };
    expect(sequences.length).toBe(48 * 3);
    expect(sequences.map((s) => s.ordinal)).toEqual(sequences.map((_, i) => i));
    expect(sequences.slice(0, 3).map((s) => [s.externalId, s.documentId, s.offset, s.tokens])).toEqual([
      [`${first.id}#0`, first.id, 0, first.tokens.slice(0, 10)],
      [`${first.id}#10`, first.id, 10, first.tokens.slice(10, 20)],
      [`${first.id}#20`, first.id, 20, first.tokens.slice(20)],
    ]);
  });
});

describe("readSequences with text documents", () => {
  it("tokenizes text, keeps the exact text of whole documents and decodes the text of windows", async () => {
    const text = "Don't look now, but the man in the moon is laughing at you.";
    const file = tempFile(
      [JSON.stringify({ id: 7, text }), "", JSON.stringify({ id: "short", text: "Hi" }), JSON.stringify({ id: "one", text: "a" })].join("\n"),
    );
    const whole = await collect(readSequences(file, tokenizer, { contextLength: 64 }));
    expect(whole.map((s) => [s.ordinal, s.externalId, s.text])).toEqual([
      [0, "7", text],
      // "a" is one token: nothing to predict, so no sequence.
    ]);
    expect(whole[0].tokens).toEqual(tokenizer.encode(text));

    expect(whole[0].tokens.length).toBe(16);
    const windows = await collect(readSequences(file, tokenizer, { contextLength: 6 }));
    expect(windows.map((s) => s.externalId)).toEqual(["7#0", "7#6", "7#12"]);
    expect(windows.map((s) => s.text).join("")).toBe(text);
    expect(windows.every((s) => s.text === tokenizer.decode(s.tokens))).toBe(true);

    // With windows of 5, the 16th token "." would be a window of its own, with nothing to predict.
    const shorter = await collect(readSequences(file, tokenizer, { contextLength: 5 }));
    expect(shorter.map((s) => s.externalId)).toEqual(["7#0", "7#5", "7#10"]);
    expect(shorter.map((s) => s.text).join("")).toBe(text.slice(0, -1));
  });

  it("rejects a window id that another document already uses", async () => {
    const file = tempFile([JSON.stringify({ id: "a#0", tokens: [1, 2] }), JSON.stringify({ id: "a", tokens: [1, 2, 3, 4, 5] })].join("\n"));
    const error = await refusal(collect(readSequences(file, tokenizer, { contextLength: 4 })));
    expect(error.message).toBe(`${file}, line 2: sequence id "a#0" is also used by another document (split documents get "<id>#<offset>"); rename one`);
  });
});

describe("windowSequences", () => {
  const doc = (length: number, id = "d") => ({ id, tokens: Array.from({ length }, (_, i) => 100 + i) });

  it("cuts a long document into windows of contextLength tokens, the last one shorter", () => {
    const windows = windowSequences(doc(10), { contextLength: 4 });
    expect(windows).toEqual([
      { documentId: "d", externalId: "d#0", offset: 0, tokens: [100, 101, 102, 103] },
      { documentId: "d", externalId: "d#4", offset: 4, tokens: [104, 105, 106, 107] },
      { documentId: "d", externalId: "d#8", offset: 8, tokens: [108, 109] },
    ]);
  });

  it("keeps a document that fits whole, under its own id", () => {
    expect(windowSequences(doc(4), { contextLength: 4 })).toEqual([{ documentId: "d", externalId: "d", offset: 0, tokens: [100, 101, 102, 103] }]);
  });

  it("gives no sequence for fewer than 2 tokens: no next token to predict", () => {
    expect(windowSequences(doc(0), { contextLength: 4 })).toEqual([]);
    expect(windowSequences(doc(1), { contextLength: 4 })).toEqual([]);
    // A trailing window of 1 token is left out for the same reason.
    expect(windowSequences(doc(9), { contextLength: 4 }).map((w) => w.offset)).toEqual([0, 4]);
  });

  it("overlaps windows with a stride shorter than the context", () => {
    const windows = windowSequences(doc(10), { contextLength: 4, stride: 2 });
    expect(windows.map((w) => [w.offset, w.tokens.length])).toEqual([
      [0, 4],
      [2, 4],
      [4, 4],
      [6, 4],
    ]);
  });

  it("puts every token in exactly one window, in order, save a lone last token", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300 }), fc.integer({ min: 2, max: 64 }), (length, contextLength) => {
        const { tokens } = doc(length);
        const windows = windowSequences({ id: "x", tokens }, { contextLength });
        const covered = windows.flatMap((w) => w.tokens);
        const dropped = length % contextLength === 1 ? 1 : 0;
        expect(covered).toEqual(tokens.slice(0, length - dropped));
        for (const [i, w] of windows.entries()) {
          expect(w.offset).toBe(i * contextLength);
          expect(w.tokens).toEqual(tokens.slice(w.offset, w.offset + w.tokens.length));
          expect(w.tokens.length).toBeGreaterThanOrEqual(2);
          expect(w.tokens.length).toBeLessThanOrEqual(contextLength);
          expect(w.externalId).toBe(length > contextLength ? `x#${w.offset}` : "x");
        }
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  it("recovers a text document from the text of its windows", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme-ascii", maxLength: 200 }), fc.integer({ min: 2, max: 16 }), (text, contextLength) => {
        const tokens = tokenizer.encode(text);
        fc.pre(tokens.length % contextLength !== 1);
        const windows = windowSequences({ id: "t", tokens, text }, { contextLength, decode: (ids) => tokenizer.decode(ids) });
        expect(windows.map((w) => w.text).join("")).toBe(tokens.length < 2 ? "" : text);
      }),
      { seed: 7, numRuns: 150 },
    );
  });

  it("rejects a context length or stride that cannot make windows", () => {
    expect(() => windowSequences(doc(5), { contextLength: 1 })).toThrow(/context length must be an integer of at least 2, got 1/);
    expect(() => windowSequences(doc(5), { contextLength: 2.5 })).toThrow(InputError);
    expect(() => windowSequences(doc(5), { contextLength: 4, stride: 0 })).toThrow(/stride must be an integer from 1 to the context length 4, got 0/);
    expect(() => windowSequences(doc(5), { contextLength: 4, stride: 5 })).toThrow(InputError);
  });
});

describe("readCorpus input errors", () => {
  const good = JSON.stringify({ id: "a", text: "fine" });

  /** The message of reading a file whose line 3 is `badLine` (line 1 is good, line 2 blank). */
  async function messageFor(badLine: string | Uint8Array, options = {}): Promise<{ file: string; message: string }> {
    const bytes = typeof badLine === "string" ? Buffer.from(badLine) : Buffer.from(badLine);
    const file = tempFile(Buffer.concat([Buffer.from(`${good}\n\n`), bytes, Buffer.from("\n")]));
    const error = await refusal(collect(readCorpus(file, { vocabSize: VOCAB, ...options })));
    return { file, message: error.message };
  }

  it.each([
    ['{"id": "b", "text": "x"', /^not valid JSON \(/],
    ["[1, 2]", /^expected a JSON object, got an array$/],
    ['"text"', /^expected a JSON object, got a string$/],
    ['{"id": "b"}', /^needs "text" \(a string\) or "tokens" \(an array of token ids\)$/],
    ['{"id": "b", "text": "x", "tokens": [1]}', /^has both "text" and "tokens"; give one$/],
    ['{"id": "b", "tokens": "1 2"}', /^"tokens" must be an array of token ids, got "1 2"$/],
    ['{"id": "b", "tokens": [1, -2]}', /^"tokens"\[1\] is -2, expected a non-negative integer token id$/],
    ['{"id": "b", "tokens": [1.5]}', /^"tokens"\[0\] is 1.5, expected a non-negative integer token id$/],
    ['{"id": "b", "tokens": ["7"]}', /^"tokens"\[0\] is "7", expected a non-negative integer token id$/],
    ['{"id": "b", "tokens": [3, 50257]}', /^"tokens"\[1\] is token id 50257, not below the vocabulary size 50257$/],
    ['{"text": "x"}', /^missing "id"$/],
    ['{"id": "", "text": "x"}', /^"id" must be a non-empty string or an integer, got ""$/],
    ['{"id": null, "text": "x"}', /^"id" must be a non-empty string or an integer, got null$/],
    ['{"id": 12345678901234567890, "text": "x"}', /^"id" 12345678901234567000 is not an integer below 2\^53; write it as a string$/],
    ['{"id": "a", "text": "again"}', /^duplicate id "a" \(first used on line 1\)$/],
    ['{"id": "b", "text": 5}', /^"text" must be a string, got 5$/],
    ['{"id": "b", "text": "a\\ud800b"}', /^"text" contains an unpaired surrogate \\ud800, which is not valid Unicode text$/],
    [new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x00, 0x80]), /^not valid UTF-8 text \(is this a JSONL text file\?\)$/],
    // Control characters quoted by the JSON parser are escaped, not printed raw.
    [new Uint8Array([0x01, 0x02, 0x61]), /^not valid JSON \(Unexpected token '\\u0001', "\\u0001\\u0002a" is not valid JSON\)$/],
  ])("line 3 = %s", async (line, expected) => {
    const { file, message } = await messageFor(line);
    expect(message.startsWith(`${file}, line 3: `)).toBe(true);
    expect(message.slice(`${file}, line 3: `.length)).toMatch(expected);
  });

  it('treats the number 1 and the string "1" as the same id', async () => {
    const file = tempFile('{"id": 1, "tokens": [1]}\n{"id": "1", "tokens": [2]}\n');
    const error = await refusal(collect(readCorpus(file)));
    expect(error.message).toBe(`${file}, line 2: duplicate id "1" (first used on line 1)`);
  });

  it("rejects a line longer than the limit, and accepts one exactly at it", async () => {
    const line = JSON.stringify({ id: "b", text: "x".repeat(100) });
    const atLimit = await collect(readCorpus(tempFile(`${good}\n${line}\n`), { maxLineBytes: line.length }));
    expect(atLimit.length).toBe(2);
    const { file, message } = await messageFor(line, { maxLineBytes: line.length - 1 });
    expect(message).toBe(
      `${file}, line 3: longer than ${line.length - 1} bytes; a JSONL file has one JSON object per line (raise the line limit if this document really is that long)`,
    );
  });

  it("rejects a line limit that is not a positive number of bytes", async () => {
    const file = tempFile(`${good}\n`);
    for (const maxLineBytes of [0, -5, Number.NaN]) {
      expect((await refusal(collect(readCorpus(file, { maxLineBytes })))).message).toMatch(/^line limit must be a positive number of bytes/);
    }
  });

  it("names a file that cannot be read", async () => {
    const missing = path.join(tmp, "missing.jsonl");
    expect((await refusal(collect(readCorpus(missing)))).message).toMatch(/missing\.jsonl: cannot read \(ENOENT/);
    expect((await refusal(collect(readCorpus(tmp)))).message).toMatch(/cannot read \(EISDIR/);
  });

  it("accepts CRLF line ends, a byte order mark, a last line without line break and empty text", async () => {
    const file = tempFile(`\uFEFF{"id": "a", "text": "x"}\r\n\r\n{"id": 2, "tokens": []}\r\n{"id": "c", "text": "", "extra": true}`);
    expect(await collect(readCorpus(file))).toEqual([
      { id: "a", line: 1, text: "x" },
      { id: "2", line: 3, tokens: [] },
      { id: "c", line: 4, text: "" },
    ]);
  });
});

describe("readQueries", () => {
  const read = (lines: unknown[]) => {
    const file = tempFile(lines.map((line) => (typeof line === "string" ? line : JSON.stringify(line))).join("\n"));
    return { file, run: () => readQueries(file, tokenizer, { contextLength: 64 }) };
  };

  it("tokenizes the prompt and the completion of text queries separately", async () => {
    const { run } = read([{ id: "q1", prompt: "The moon is", completion: " laughing at you." }]);
    expect(await run()).toEqual([
      {
        id: "q1",
        line: 1,
        prompt: "The moon is",
        completion: " laughing at you.",
        promptTokens: tokenizer.encode("The moon is"),
        completionTokens: tokenizer.encode(" laughing at you."),
      },
    ]);
  });

  it.each([
    [{ id: "q", prompt: "Hi", completion: "" }, /^empty completion: there is nothing to measure the probability of$/],
    [{ id: "q", prompt_tokens: [1], completion_tokens: [] }, /^empty completion/],
    [{ id: "q", prompt: "", completion: " there" }, /^empty prompt: the first completion token would have nothing to be predicted from/],
    [
      { id: "q", prompt_tokens: Array(60).fill(1), completion_tokens: Array(5).fill(2) },
      /^prompt and completion are 65 tokens, more than the context length 64$/,
    ],
    [{ id: "q", prompt: "a", completion: "b".repeat(300) }, /^prompt and completion are \d+ tokens, more than the context length 64$/],
    [{ id: "q", prompt: "a", prompt_tokens: [1], completion_tokens: [2] }, /^mixes text fields \(prompt, completion\) with token fields/],
    [{ id: "q", prompt_tokens: [1], completion_tokens: [50300] }, /^"completion_tokens"\[0\] is token id 50300, not below the vocabulary size 50257$/],
    [{ id: "q", prompt: "a" }, /^missing "completion" \(a query is "prompt" and "completion", or "prompt_tokens" and "completion_tokens"\)$/],
    [{ id: "q" }, /^missing "prompt" and "completion"/],
    [{ prompt: "a", completion: "b" }, /^missing "id"$/],
    [{ id: "first", prompt: "a", completion: "b" }, /^duplicate id "first" \(first used on line 1\)$/],
    ["{oops", /^not valid JSON/],
  ])("line 2 = %j", async (line, expected) => {
    const { file, run } = read([{ id: "first", prompt: "Hello", completion: " world" }, line]);
    const error = await refusal(run());
    expect(error.message.startsWith(`${file}, line 2: `)).toBe(true);
    expect(error.message.slice(`${file}, line 2: `.length)).toMatch(expected);
  });
});

describe("streaming", () => {
  it("yields the first document while the rest of the file is still being written", async () => {
    const fifo = path.join(tmp, "corpus.fifo");
    execFileSync("mkfifo", [fifo]);
    const writer = createWriteStream(fifo);
    const documents = readCorpus(fifo);
    try {
      writer.write(`${JSON.stringify({ id: "first", tokens: [1, 2, 3] })}\n`);
      const first = await Promise.race([
        documents.next(),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error("no document before the end of the file")), 10_000)),
      ]);
      expect(first).toEqual({ done: false, value: { id: "first", line: 1, tokens: [1, 2, 3] } });

      for (let i = 0; i < 1000; i++) writer.write(`${JSON.stringify({ id: i, text: `document ${i}` })}\n`);
      writer.end();
      expect((await collect(documents)).length).toBe(1000);
    } finally {
      writer.destroy();
      await documents.return(undefined);
    }
  });
});

describe("garbage input", () => {
  const validLine = fc.oneof(
    fc.record({ id: fc.string({ minLength: 1, maxLength: 5 }), text: fc.string({ maxLength: 20 }) }),
    fc.record({ id: fc.nat(), tokens: fc.array(fc.nat({ max: VOCAB + 10 }), { maxLength: 8 }) }),
  );
  const line = fc.oneof(
    fc.uint8Array({ maxLength: 80 }),
    validLine.map((doc) => new TextEncoder().encode(JSON.stringify(doc))),
    // A valid line with one byte changed.
    fc.tuple(validLine, fc.nat(), fc.integer({ min: 0, max: 255 })).map(([doc, at, byte]) => {
      const bytes = new TextEncoder().encode(JSON.stringify(doc));
      bytes[at % bytes.length] = byte;
      return bytes;
    }),
  );

  it("gives valid documents or an InputError naming the line, never another failure", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(line, { maxLength: 8 }), async (lines) => {
        const file = tempFile(Buffer.concat(lines.flatMap((bytes) => [Buffer.from(bytes), Buffer.from("\n")])));
        const check = (doc: CorpusDocument): void => {
          expect(doc.id).not.toBe("");
          expect((doc.text === undefined) !== (doc.tokens === undefined)).toBe(true);
          expect((doc.tokens ?? []).every((t) => Number.isSafeInteger(t) && t >= 0 && t < VOCAB)).toBe(true);
        };
        try {
          for await (const doc of readCorpus(file, { vocabSize: VOCAB, maxLineBytes: 64 })) check(doc);
          await collect(readSequences(file, tokenizer, { contextLength: 4, maxLineBytes: 64 }));
        } catch (err) {
          expect(err).toBeInstanceOf(InputError);
          expect((err as Error).message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}, line \\d+: `));
          expect((err as Error).message).not.toMatch(/\p{Cc}/u);
        }
      }),
      { seed: 1234, numRuns: 300 },
    );
  });
});
