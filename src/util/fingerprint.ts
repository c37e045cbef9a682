/** Content fingerprints that tie saved artifacts to the exact model, tokenizer and corpus. */
import { createHash } from "node:crypto";
import { createReadStream, existsSync } from "node:fs";
import path from "node:path";

/** sha256 over the names and contents of files, in the order given; missing files are skipped. */
export async function fingerprintFiles(files: readonly string[]): Promise<string> {
  const hash = createHash("sha256");
  for (const file of files) {
    if (!existsSync(file)) continue;
    hash.update(`${path.basename(file)}\0`);
    for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
    hash.update("\0");
  }
  return hash.digest("hex");
}

export function fingerprintValue(value: unknown): string {
  return createHash("sha256").update(JSON.stringify(value)).digest("hex");
}
