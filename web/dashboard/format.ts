/**
 * Scores span many orders of magnitude: 3 significant digits without trailing zeros, in exponent
 * form outside [1e-3, 1e4).
 */
export function formatScore(x: number): string {
  const abs = Math.abs(x);
  return abs === 0 || (abs >= 1e-3 && abs < 1e4) ? String(Number(x.toPrecision(3))) : x.toExponential(2);
}

export const formatPercent = (share: number): string => `${(100 * share).toFixed(1)}%`;
