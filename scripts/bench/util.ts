/** Shared helpers of the benchmark sections. */
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export const repoRoot = (): string => root;

/** The reference fixtures: INFLUENCE_FIXTURES, ../shared/fixtures, or the workplace's copy. */
export function fixturesDir(): string {
  const found = [process.env.INFLUENCE_FIXTURES, path.resolve(root, "../shared/fixtures"), "/work/shared/fixtures"].find((d) => d && existsSync(d));
  if (!found) throw new Error("reference fixtures not found; set INFLUENCE_FIXTURES");
  return found;
}

/** Wall-clock seconds of `repeats` runs of fn, after one warm-up run. */
export function timeIt(fn: () => void, repeats: number): number[] {
  fn();
  return Array.from({ length: repeats }, () => {
    const t0 = performance.now();
    fn();
    return (performance.now() - t0) / 1000;
  });
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** p-th percentile (0..100) by nearest rank. */
export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
