/** Conjugate gradients for (F + D) x = b with F positive semi-definite and D > 0 diagonal. */
export interface CgResult {
  x: Float64Array;
  iterations: number;
  /** ||b - (F + D) x|| / ||b|| at exit. */
  relativeResidual: number;
}

const dot = (a: Float64Array, b: Float64Array) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

export function conjugateGradient(
  apply: (v: Float64Array) => Float64Array,
  b: Float64Array,
  { tolerance = 1e-6, maxIterations = 500 }: { tolerance?: number; maxIterations?: number } = {},
): CgResult {
  const x = new Float64Array(b.length);
  const r = Float64Array.from(b);
  const p = Float64Array.from(b);
  const bNorm = Math.sqrt(dot(b, b));
  if (bNorm === 0) return { x, iterations: 0, relativeResidual: 0 };
  let rr = dot(r, r);
  let iterations = 0;
  while (iterations < maxIterations && Math.sqrt(rr) / bNorm > tolerance) {
    const ap = apply(p);
    const alpha = rr / dot(p, ap);
    for (let i = 0; i < x.length; i++) {
      x[i] += alpha * p[i];
      r[i] -= alpha * ap[i];
    }
    const next = dot(r, r);
    const beta = next / rr;
    for (let i = 0; i < p.length; i++) p[i] = r[i] + beta * p[i];
    rr = next;
    iterations++;
  }
  return { x, iterations, relativeResidual: Math.sqrt(rr) / bNorm };
}
