/**
 * Sizes of memory: the `--memory` option's values, the machine's memory (or the cgroup's limit),
 * and the peak this process reached.
 */
import { readFileSync } from "node:fs";
import os from "node:os";
import { InputError } from "./errors.js";

const UNITS: Record<string, number> = { "": 1, B: 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40 };

/**
 * Bytes of a size such as `8G`, `512M`, `1.5G`, `64K` or `1000000` (binary units: 1G = 2^30
 * bytes; an optional trailing `B` or `iB`, any case), as `--memory` takes it.
 */
export function parseMemorySize(value: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(value);
  const bytes = m ? Math.floor(Number(m[1]) * UNITS[m[2].toUpperCase()]) : Number.NaN;
  if (!m || !Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new InputError(`--memory: expected a size such as 8G, 512M or 1.5G (bytes, K, M, G or T), got ${JSON.stringify(value)}`);
  }
  return bytes;
}

/** Bytes as people read them: 1.4 GiB, 512 MiB, 12 KiB. */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of [
    ["TiB", 2 ** 40],
    ["GiB", 2 ** 30],
    ["MiB", 2 ** 20],
    ["KiB", 2 ** 10],
  ] as const) {
    if (bytes >= size) return `${(bytes / size).toFixed(bytes >= 10 * size ? 0 : 1)} ${unit}`;
  }
  return `${Math.round(bytes)} B`;
}

/** The cgroup (v2, else v1) memory limit of this process, when it has one. */
function cgroupLimit(): number | undefined {
  for (const file of ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]) {
    try {
      const limit = Number(readFileSync(file, "utf8").trim());
      // "max" reads as NaN; v1 says "no limit" with a number near 2^63.
      if (Number.isSafeInteger(limit) && limit > 0) return limit;
    } catch {
      // No such controller here.
    }
  }
  return undefined;
}

/** The memory this process may use: the machine's, or its cgroup's limit when lower. */
export function machineMemory(): number {
  return Math.min(os.totalmem(), cgroupLimit() ?? Number.POSITIVE_INFINITY);
}

/**
 * The most resident memory this process (every thread of it) has held so far: VmHWM from
 * /proc/self/status, or getrusage's maxRSS where there is no /proc.
 */
export function peakResidentBytes(): number {
  try {
    const hwm = /^VmHWM:\s+(\d+)\s+kB$/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (hwm) return Number(hwm[1]) * 1024;
  } catch {
    // Not Linux.
  }
  return process.resourceUsage().maxRSS * 1024;
}
