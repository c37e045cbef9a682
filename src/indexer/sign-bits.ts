/**
 * One bit per coordinate: how a vector file stores a sketch's rows as signs (indexer/vector-file.ts),
 * and how a query meets them. Row x keeps sign(x_j) and one factor f = |x|_2^2 / |x|_1; then
 *
 *   <y, x>  ~  f * sum_j y_j sign(x_j),
 *
 * unbiased wherever E[y_j | x_j] is linear in x_j (jointly Gaussian coordinates, as a random
 * rotation makes them), erring by (pi/2 - 1)(1 - rho^2) per coordinate in variance, in units of
 * |x| |y| / dim (tests/sign-bits.test.ts). Of a sketch of k << n coordinates, whose own error is
 * about 1/k, a bit thus carries 2/pi of a coordinate, and a byte of signs ranks as about five int8
 * coordinates do; of a whole rotation (k = n, products exact) the signs' error is all there is
 * (docs/research/index-faithfulness.md, section 14).
 *
 * The query is rounded to QUERY_BITS-bit integers q (one scale per stretch) and stored as bit
 * planes (sign-kernels.ts) b_k (two's complement: q = sum_k w_k b_k, w = 1, 2, .., -2^(QUERY_BITS-1)), so that with
 * u the row's bits over the same bytes and s = 2u - 1,
 *
 *   sum_j q_j s_j = sum_k w_k (2 |b_k & u| - |b_k|) = sum_k w_k (|u| - hamming(b_k, u)),
 *
 * which SimSIMD's popcounts give exactly, whatever bits of u lie outside the stretch (b_k is zero
 * there).
 */
import { createRequire } from "node:module";
import { QUERY_BITS, bytesOver, packSigns } from "./sign-kernels.js";

const { hamming } = createRequire(import.meta.url)("simsimd") as typeof import("simsimd");

/** w_k of the planes (sign-kernels.ts signPlanes): 1, 2, 4, 8, -16. */
const PLANE_WEIGHTS = Array.from({ length: QUERY_BITS }, (_, k) => (k === QUERY_BITS - 1 ? -(2 ** k) : 2 ** k));

/** Zero bytes that |u| is counted against (grown as needed). */
let zeros = new Uint8Array(0);

/** sum_j q_j sign(x_j) over the stretch at coordinate `offset` whose planes signPlanes made; `row` is the row's bits (signBytes(dim) bytes). */
export function signProduct(row: Uint8Array, offset: number, planes: Uint8Array): number {
  const bytes = planes.length / QUERY_BITS;
  if (zeros.length < bytes) zeros = new Uint8Array(bytes);
  const first = offset >> 3;
  const u = row.subarray(first, first + bytes);
  const set = hamming(u, zeros.subarray(0, bytes));
  let sum = 0;
  for (let k = 0; k < QUERY_BITS; k++) sum += PLANE_WEIGHTS[k] * (set - hamming(planes.subarray(k * bytes, (k + 1) * bytes), u));
  return sum;
}

/**
 * The query stretch `values` at coordinate `offset` as its signs alone, for a first pass that only
 * picks candidates for a finer one: one plane over the row bytes the stretch lies in (packSigns
 * from bit offset & 7) and its factor g = |y|_2^2 / |y|_1. A row then scores f g sum_j sign(y_j)
 * sign(x_j) (signAgreement), one popcount instead of QUERY_BITS + 1: SimHash's estimate, about
 * <y, x> arcsin(rho) / rho for jointly Gaussian coordinates (f g -> pi/2, E[sign sign] =
 * (2/pi) arcsin(rho)), so unbiased at the small correlations of a query with most sequences and
 * high at large ones (7 % at 0.6), which only reorders the first pass's best. Undefined for a
 * stretch of zeros.
 */
export function signsPlane(values: Float32Array, offset: number): { plane: Uint8Array; factor: number } | undefined {
  const plane = new Uint8Array(bytesOver(offset, values.length).bytes);
  const factor = packSigns(values, plane, offset & 7);
  return factor > 0 ? { plane, factor } : undefined;
}

/** Set bits of a byte. */
const BYTE_BITS = Uint8Array.from({ length: 256 }, (_, b) => b.toString(2).replaceAll("0", "").length);

/** sum_j sign(y_j) sign(x_j) over coordinates [offset, offset + size) of `row` (its bits), `plane` the query's signs there (signsPlane). */
export function signAgreement(row: Uint8Array, offset: number, size: number, plane: Uint8Array): number {
  const first = offset >> 3;
  const u = row.subarray(first, first + plane.length);
  let differ = hamming(plane, u);
  // The row's bits in the stretch's first and last bytes but outside it met zeros of the plane: not the stretch's.
  const [low, high] = [offset & 7, (offset + size) & 7];
  if (low) differ -= BYTE_BITS[u[0] & ((1 << low) - 1)];
  if (high) differ -= BYTE_BITS[u[plane.length - 1] & ~((1 << high) - 1) & 0xff];
  return size - 2 * differ;
}

/**
 * A query stretch's product with a row's bits: of one plane (signsPlane) by signAgreement, of
 * QUERY_BITS planes (signPlanes) by signProduct.
 */
export function stretchProduct(row: Uint8Array, offset: number, size: number, planes: Uint8Array): number {
  return planes.length === bytesOver(offset, size).bytes ? signAgreement(row, offset, size, planes) : signProduct(row, offset, planes);
}

/** The planes of `planes` (made by signPlanes for coordinates from `offset`) restricted to coordinates [from, to): the bits outside cleared. */
export function planesOver(planes: Uint8Array, offset: number, from: number, to: number): Uint8Array {
  const bytes = planes.length / QUERY_BITS;
  const { first, bytes: kept } = bytesOver(from, to - from);
  const skip = first - (offset >> 3);
  const over = new Uint8Array(QUERY_BITS * kept);
  // Bits of the first kept byte below `from`, and of the last at or above `to`, are not the range's.
  const lowMask = 0xff << (from & 7);
  const highMask = to & 7 ? 0xff >> (8 - (to & 7)) : 0xff;
  for (let k = 0; k < QUERY_BITS; k++) {
    const plane = over.subarray(k * kept, (k + 1) * kept);
    plane.set(planes.subarray(k * bytes + skip, k * bytes + skip + kept));
    plane[0] &= lowMask;
    plane[kept - 1] &= highMask;
  }
  return over;
}
