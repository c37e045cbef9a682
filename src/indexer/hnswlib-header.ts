/**
 * The fixed header of an hnswlib index file (hnswalg.h, saveIndex), read to check an index against
 * its sidecar before hnswlib loads it: hnswlib's reader trusts the file and takes the dimension
 * from its caller, so a mismatch would be read as garbage or crash the process.
 *
 * 96 bytes, little-endian: u64 offsetLevel0, maxElements, curElementCount, sizeDataPerElement,
 * labelOffset, offsetData; i32 maxLevel; u32 enterpointNode; u64 maxM, maxM0, M; f64 mult;
 * u64 efConstruction. Then curElementCount level-0 records of sizeDataPerElement bytes, then the
 * upper-level link lists.
 */
import { open } from "node:fs/promises";
import { readFully } from "./binary-io.js";

const HEADER_BYTES = 96;

export interface HnswlibHeader {
  count: number;
  /** Vector dimension: the bytes between offsetData and labelOffset are float32 coordinates. */
  dim: number;
  M: number;
  efConstruction: number;
  /** Smallest size of a complete file with this header. */
  minFileSize: number;
  fileSize: number;
}

/** The header of the hnswlib file at `path`, or undefined if the file is shorter than one. */
export async function readHnswlibHeader(path: string): Promise<HnswlibHeader | undefined> {
  const handle = await open(path, "r");
  try {
    const bytes = new Uint8Array(HEADER_BYTES);
    if (!(await readFully(handle, bytes, 0))) return undefined;
    const view = new DataView(bytes.buffer);
    const u64 = (offset: number): number => Number(view.getBigUint64(offset, true));
    const count = u64(16);
    const sizeDataPerElement = u64(24);
    return {
      count,
      dim: (u64(32) - u64(40)) / 4,
      M: u64(72),
      efConstruction: u64(88),
      minFileSize: HEADER_BYTES + count * sizeDataPerElement,
      fileSize: (await handle.stat()).size,
    };
  } finally {
    await handle.close();
  }
}

/**
 * Whether the file is as long as its link lists say (the check hnswlib's reader makes when it
 * loads it): after `curElementCount` level-0 records, each element has a u32 byte length and that
 * many bytes of upper-level links. hnswlib's writer does not report failed writes, so a full disk
 * leaves a short file behind it.
 */
export async function hnswlibFileComplete(path: string, header: HnswlibHeader): Promise<boolean> {
  if (header.fileSize < header.minFileSize) return false;
  const handle = await open(path, "r");
  try {
    const lists = new Uint8Array(header.fileSize - header.minFileSize);
    if (!(await readFully(handle, lists, header.minFileSize))) return false;
    const view = new DataView(lists.buffer);
    let at = 0;
    for (let i = 0; i < header.count; i++) {
      if (at + 4 > lists.length) return false;
      at += 4 + view.getUint32(at, true);
    }
    return at === lists.length;
  } finally {
    await handle.close();
  }
}
