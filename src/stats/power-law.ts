/**
 * Power-law fit of the upper tail of positive scores, as in the paper's Figure 8:
 * P(X > x) = (x / xMin)^-alpha for x >= xMin. alpha is the maximum-likelihood estimate for a given
 * xMin, and xMin is chosen to minimise the Kolmogorov-Smirnov distance between the fitted and the
 * empirical tail (Clauset, Shalizi & Newman 2009; their exponent is this alpha + 1).
 */
export interface PowerLaw {
  alpha: number;
  xMin: number;
  ksDistance: number;
  tailCount: number;
}

const MIN_TAIL = 10;
/** xMin candidates: the largest values only; the fit concerns the upper tail. */
const MAX_CANDIDATES = 2000;

/** Fit to the positive values of `scores`; null with fewer than 10 positive values. */
export function fitPowerLaw(scores: ArrayLike<number>): PowerLaw | null {
  const x = Array.from(scores)
    .filter((s) => s > 0)
    .sort((a, b) => b - a);
  if (x.length < MIN_TAIL) return null;
  let best: PowerLaw | null = null;
  let logSum = 0;
  // Tail = the n largest values, xMin = x[n-1]; sum of logs grows as n grows.
  const limit = Math.min(x.length, MAX_CANDIDATES);
  for (let n = 1; n <= limit; n++) {
    logSum += Math.log(x[n - 1]);
    if (n < MIN_TAIL || (n < x.length && x[n] === x[n - 1])) continue;
    const xMin = x[n - 1];
    const sumLogRatio = logSum - n * Math.log(xMin);
    if (sumLogRatio <= 0) continue;
    const alpha = n / sumLogRatio;
    let ks = 0;
    for (let i = 0; i < n; i++) {
      // Empirical survival just above and at x[i] (i values exceed it strictly when untied).
      const model = (x[i] / xMin) ** -alpha;
      ks = Math.max(ks, Math.abs(i / n - model), Math.abs((i + 1) / n - model));
    }
    if (!best || ks < best.ksDistance) best = { alpha, xMin, ksDistance: ks, tailCount: n };
  }
  return best;
}

/** Share of the total positive mass carried by the top `fraction` of all values. */
export function topShare(scores: ArrayLike<number>, fraction: number): number {
  const positive = Array.from(scores)
    .filter((s) => s > 0)
    .sort((a, b) => b - a);
  const total = positive.reduce((s, x) => s + x, 0);
  if (total === 0) return 0;
  const k = Math.max(1, Math.ceil(scores.length * fraction));
  return positive.slice(0, k).reduce((s, x) => s + x, 0) / total;
}

export interface Bin {
  lower: number;
  upper: number;
  count: number;
}

/** Equal-width histogram over [min, max]. */
export function histogram(values: ArrayLike<number>, bins: number): Bin[] {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) {
    min = Math.min(min, values[i]);
    max = Math.max(max, values[i]);
  }
  if (values.length === 0) return [];
  const width = max > min ? (max - min) / bins : 1;
  const out = Array.from({ length: bins }, (_, i) => ({ lower: min + i * width, upper: min + (i + 1) * width, count: 0 }));
  for (let i = 0; i < values.length; i++) out[Math.min(bins - 1, Math.floor((values[i] - min) / width))].count++;
  return out;
}
