/**
 * The token store: the token ids of every training sequence (ordinals 0..n-1), so that worker
 * threads can recompute training gradients from a file instead of a database connection.
 *
 * Layout (integers little-endian):
 *
 *   offset  size  field
 *        0     8  magic "IGTOKS01"
 *        8     4  u32 format version (1)
 *       12     4  u32 zero (reserved)
 *       16     8  u64 count n (sequences)
 *       24     8  u64 T (tokens over all sequences)
 *       32    32  sha256 of the payload, bytes [96, end)
 *       64    32  sha256 of bytes [0, 64)
 *       96  4 T   i32 tokens, sequence after sequence
 *    96+4T  4 n   u32 sequence lengths; the offsets are their prefix sums
 *
 * Lengths come after the tokens so that a streaming writer can append tokens as they come and
 * keep only one number per sequence in memory.
 */
import { createHash } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import { InputError } from "../util/errors.js";
import { AtomicFileWriter, bytesOf, readFully } from "./binary-io.js";

const MAGIC = "IGTOKS01";
const VERSION = 1;
const HEADER_BYTES = 96;
/** Tokens are staged and written in batches of this many (4 MB). */
const STAGE_TOKENS = 1 << 20;
const MAX_TOKEN = 0x7fffffff;

export interface TokenSequence {
  ordinal: number;
  tokens: readonly number[];
}

export interface TokenStore {
  count: number;
  totalTokens: number;
  /** sha256 (hex) of the payload. */
  checksum: string;
  /** The tokens of one sequence: a view into the loaded file (do not modify). */
  tokens(ordinal: number): Int32Array;
}

function encodeHeader(count: number, totalTokens: number, payloadChecksum: Uint8Array): Uint8Array {
  const header = new Uint8Array(HEADER_BYTES);
  const view = new DataView(header.buffer);
  header.set(Buffer.from(MAGIC, "ascii"), 0);
  view.setUint32(8, VERSION, true);
  view.setBigUint64(16, BigInt(count), true);
  view.setBigUint64(24, BigInt(totalTokens), true);
  header.set(payloadChecksum, 32);
  header.set(createHash("sha256").update(header.subarray(0, 64)).digest(), 64);
  return header;
}

/**
 * Writes a token store in pieces (e.g. one append per shard of the corpus); nothing is visible at
 * `path` until finish(), and abort() leaves any previous file untouched.
 */
export class TokenStoreWriter {
  private readonly lengths: number[] = [];
  private totalTokens = 0;
  private readonly hash = createHash("sha256");
  private readonly stage = new Int32Array(STAGE_TOKENS);
  private staged = 0;

  private constructor(private readonly file: AtomicFileWriter) {}

  static async open(path: string): Promise<TokenStoreWriter> {
    const file = await AtomicFileWriter.open(path);
    try {
      await file.append(new Uint8Array(HEADER_BYTES));
    } catch (err) {
      await file.abort();
      throw err;
    }
    return new TokenStoreWriter(file);
  }

  /** Appends sequences; their ordinals must continue 0, 1, 2, ... across appends. */
  async append(sequences: Iterable<TokenSequence> | AsyncIterable<TokenSequence>): Promise<void> {
    for await (const { ordinal, tokens } of sequences) {
      const expected = this.lengths.length;
      if (ordinal !== expected) throw new RangeError(`${this.file.target}: got ordinal ${ordinal} where ${expected} was expected`);
      for (const token of tokens) {
        if (!Number.isInteger(token) || token < 0 || token > MAX_TOKEN) {
          throw new RangeError(`${this.file.target}: sequence ${ordinal} has an invalid token id ${token}`);
        }
        if (this.staged === this.stage.length) await this.flush();
        this.stage[this.staged++] = token;
      }
      this.lengths.push(tokens.length);
      this.totalTokens += tokens.length;
    }
  }

  private async flush(): Promise<void> {
    const bytes = bytesOf(this.stage.subarray(0, this.staged));
    this.hash.update(bytes);
    await this.file.append(bytes);
    this.staged = 0;
  }

  async finish(): Promise<{ count: number; totalTokens: number; checksum: string }> {
    try {
      await this.flush();
      const lengths = bytesOf(Uint32Array.from(this.lengths));
      this.hash.update(lengths);
      await this.file.append(lengths);
      const digest = this.hash.digest();
      await this.file.writeAt(encodeHeader(this.lengths.length, this.totalTokens, digest), 0);
      await this.file.commit();
      return { count: this.lengths.length, totalTokens: this.totalTokens, checksum: digest.toString("hex") };
    } catch (err) {
      await this.file.abort();
      throw err;
    }
  }

  abort(): Promise<void> {
    return this.file.abort();
  }
}

/** Writes a whole token store atomically; ordinals must be 0..n-1 in order. */
export async function writeTokenStore(
  path: string,
  sequences: Iterable<TokenSequence> | AsyncIterable<TokenSequence>,
): Promise<{ count: number; totalTokens: number; checksum: string }> {
  const writer = await TokenStoreWriter.open(path);
  try {
    await writer.append(sequences);
  } catch (err) {
    await writer.abort();
    throw err;
  }
  return writer.finish();
}

async function readWhole(path: string): Promise<Uint8Array> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (err) {
    throw new InputError(`cannot open token store ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    // A fresh ArrayBuffer (not Node's pooled Buffer) so that typed-array views are aligned.
    const bytes = new Uint8Array((await handle.stat()).size);
    await readFully(handle, bytes, 0);
    return bytes;
  } finally {
    await handle.close();
  }
}

/** Loads a token store, checking its header, size and (with `verify`, the default) checksum. */
export async function readTokenStore(path: string, { verify = true }: { verify?: boolean } = {}): Promise<TokenStore> {
  const bytes = await readWhole(path);
  if (Buffer.from(bytes.subarray(0, 8)).toString("latin1") !== MAGIC) {
    throw new InputError(`${path} is not a token store (it does not start with "${MAGIC}")`);
  }
  if (bytes.length < HEADER_BYTES) throw new InputError(`truncated token store ${path}: ${bytes.length} bytes is shorter than the header`);
  const view = new DataView(bytes.buffer, 0, HEADER_BYTES);
  const version = view.getUint32(8, true);
  if (version !== VERSION) throw new InputError(`${path}: unsupported token store version ${version} (this program reads version ${VERSION})`);
  if (!Buffer.from(createHash("sha256").update(bytes.subarray(0, 64)).digest()).equals(bytes.subarray(64, 96))) {
    throw new InputError(`corrupt token store ${path}: header checksum mismatch`);
  }
  const count = Number(view.getBigUint64(16, true));
  const totalTokens = Number(view.getBigUint64(24, true));
  const expected = HEADER_BYTES + 4 * totalTokens + 4 * count;
  if (bytes.length < expected) {
    throw new InputError(
      `truncated token store ${path}: the header promises ${count} sequences of ${totalTokens} tokens (${expected} bytes) but the file has ${bytes.length} bytes`,
    );
  }
  if (bytes.length > expected) throw new InputError(`token store ${path} has ${bytes.length - expected} unexpected bytes at its end`);
  const checksum = Buffer.from(bytes.subarray(32, 64)).toString("hex");
  if (verify && createHash("sha256").update(bytes.subarray(HEADER_BYTES)).digest("hex") !== checksum) {
    throw new InputError(`corrupt token store ${path}: payload checksum mismatch`);
  }

  const tokens = new Int32Array(bytes.buffer, HEADER_BYTES, totalTokens);
  const lengths = new Uint32Array(bytes.buffer, HEADER_BYTES + 4 * totalTokens, count);
  const offsets = new Float64Array(count + 1);
  for (let i = 0; i < count; i++) offsets[i + 1] = offsets[i] + lengths[i];
  if (offsets[count] !== totalTokens) throw new InputError(`corrupt token store ${path}: sequence lengths add up to ${offsets[count]}, not ${totalTokens}`);

  return {
    count,
    totalTokens,
    checksum,
    tokens(ordinal: number): Int32Array {
      if (!Number.isInteger(ordinal) || ordinal < 0 || ordinal >= count)
        throw new RangeError(`${path}: no sequence with ordinal ${ordinal} (the store has ${count})`);
      return tokens.subarray(offsets[ordinal], offsets[ordinal + 1]);
    },
  };
}
