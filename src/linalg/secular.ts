/**
 * Roots of the secular equation of a rank-one modified diagonal matrix D + ρ z zᵀ (the merge step of
 * divide and conquer, LAPACK dlaed4's job):
 *
 *   f(λ) = 1/ρ + Σ_j z_j² / (d_j − λ) = 0,   d ascending and distinct, ρ > 0, no z_j zero.
 *
 * f rises from −∞ to +∞ between consecutive poles, so root i lies in (d_i, d_{i+1}), the last one in
 * (d_{k−1}, d_{k−1} + ρ‖z‖²]. Each root is found as an offset τ from the pole it is nearer to, so that
 * the differences d_j − λ = (d_j − d_origin) − τ, which the eigenvectors are made of, keep their
 * relative accuracy even when λ is within rounding of a pole.
 *
 * The iteration is the "middle way" of Li (1993): f is modelled by c + s/(d_i − λ) + S/(d_{i+1} − λ)
 * matching f and f' at the iterate (all of f' that comes from poles left of the root given to the
 * left one, the rest to the right one), whose root in the interval is the next iterate. It converges
 * quadratically; a bracket kept from the sign of f takes a bisection step whenever the model's step
 * leaves it, so that every root is found.
 */

const EPS = 2 ** -52;
/** Far more than the handful of steps the model needs; bisection alone halves the bracket each step. */
const MAX_STEPS = 200;

/** λ = d[origin] + tau. */
export interface SecularRoot {
  origin: number;
  tau: number;
}

/** Root `i` (0-based) of the secular equation of `d`, `z` and `rho` (see the module comment). */
export function secularRoot(d: Float64Array, z: Float64Array, rho: number, i: number): SecularRoot {
  const k = d.length;
  const last = i === k - 1;
  let origin: number;
  let lo: number;
  let hi: number;
  if (last) {
    // f(d_{k−1} + ρ‖z‖²) ≥ 0: every term is at least −z_j²/(ρ‖z‖²).
    origin = i;
    lo = 0;
    hi = rho * z.reduce((s, x) => s + x * x, 0);
  } else {
    // The sign of f halfway between the poles tells which pole the root is nearer to.
    const half = (d[i + 1] - d[i]) / 2;
    const f = evaluate(d, z, rho, i, i, half).f;
    if (f >= 0) {
      origin = i;
      lo = 0;
      hi = half;
    } else {
      origin = i + 1;
      lo = d[i] - d[i + 1] + half;
      hi = 0;
    }
  }
  let tau = (lo + hi) / 2;
  for (let step = 0; step < MAX_STEPS; step++) {
    const e = evaluate(d, z, rho, origin, i, tau);
    if (e.f === 0 || Math.abs(e.f) <= 8 * EPS * e.bound) break;
    if (e.f < 0) lo = tau;
    else hi = tau;
    const next = last ? outerStep(d, origin, i, tau, e) : middleStep(d, origin, i, tau, e);
    const inside = next > lo && next < hi;
    const bisected = (lo + hi) / 2;
    const candidate = inside ? next : bisected;
    if (candidate === tau || hi - lo <= 2 * EPS * Math.max(Math.abs(lo), Math.abs(hi))) {
      tau = candidate;
      break;
    }
    tau = candidate;
  }
  return { origin, tau };
}

/** d_j − λ for every j, for the root `root` of {@link secularRoot}. */
export function poleDistances(d: Float64Array, root: SecularRoot, out: Float64Array): void {
  const base = d[root.origin];
  for (let j = 0; j < d.length; j++) out[j] = d[j] - base - root.tau;
}

interface Evaluation {
  f: number;
  /** Σ z_j²/(d_j−λ)² over the poles at or left of root i, and right of it. */
  dLeft: number;
  dRight: number;
  /** What the rounding error of f is proportional to: 1/ρ + Σ |z_j²/(d_j − λ)|. */
  bound: number;
}

function evaluate(d: Float64Array, z: Float64Array, rho: number, origin: number, i: number, tau: number): Evaluation {
  const base = d[origin];
  let left = 0;
  let dLeft = 0;
  for (let j = 0; j <= i; j++) {
    const t = z[j] / (d[j] - base - tau);
    left += z[j] * t;
    dLeft += t * t;
  }
  let right = 0;
  let dRight = 0;
  for (let j = i + 1; j < d.length; j++) {
    const t = z[j] / (d[j] - base - tau);
    right += z[j] * t;
    dRight += t * t;
  }
  return { f: 1 / rho + left + right, dLeft, dRight, bound: 1 / rho + right - left };
}

/** Root of c + s/(d_i − λ) + S/(d_{i+1} − λ) in (d_i, d_{i+1}), as an offset from the origin. */
function middleStep(d: Float64Array, origin: number, i: number, tau: number, e: Evaluation): number {
  const base = d[origin];
  const da = d[i] - base - tau;
  const db = d[i + 1] - base - tau;
  const c = e.f - da * e.dLeft - db * e.dRight;
  // With u the step: c u² − B u + C = 0, C = da db f.
  const bq = c * (da + db) + da * da * e.dLeft + db * db * e.dRight;
  const cq = da * db * e.f;
  return tau + quadraticStep(c, bq, cq);
}

/** The last root: f modelled by c + s/(d_{k−1} − λ), matching f and f'. */
function outerStep(d: Float64Array, origin: number, i: number, tau: number, e: Evaluation): number {
  const da = d[i] - d[origin] - tau;
  const slope = e.dLeft + e.dRight;
  const c = e.f - da * slope;
  // c + da² f' / (da − u) = 0.
  return c === 0 ? Number.NaN : tau + da + (da * da * slope) / c;
}

/** The root of a u² − b u + c = 0 between the poles, computed without cancellation (as dlaed4 does). */
function quadraticStep(a: number, b: number, c: number): number {
  if (a === 0) return c / b;
  const root = Math.sqrt(Math.abs(b * b - 4 * a * c));
  return b <= 0 ? (b - root) / (2 * a) : (2 * c) / (b + root);
}
