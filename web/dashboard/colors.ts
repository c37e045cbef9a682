/**
 * Influence colours, shared by tokens and charts: positive influence (the sequence made the
 * completion more likely) in red, negative in blue, the strength in the opacity.
 */
export const POSITIVE = { hex: "#d1453b", rgb: "209, 69, 59" };
export const NEGATIVE = { hex: "#2f6db5", rgb: "47, 109, 181" };

export type Sign = "pos" | "neg" | "zero";

export const signOf = (score: number): Sign => (score > 0 ? "pos" : score < 0 ? "neg" : "zero");

/** Largest |score|: the reference a score's colour intensity is relative to. */
export function maxAbs(scores: readonly number[]): number {
  return scores.reduce((max, s) => Math.max(max, Math.abs(s)), 0);
}

/**
 * A token's background: its sign's hue at opacity |score| / reference, linear so that a token
 * twice as influential looks twice as strong; capped below 1 to keep the text readable.
 */
export function tokenBackground(score: number, reference: number): string {
  if (score === 0 || reference === 0) return "transparent";
  const strength = Math.min(1, Math.abs(score) / reference);
  return `rgba(${score > 0 ? POSITIVE.rgb : NEGATIVE.rgb}, ${(0.85 * strength).toFixed(3)})`;
}
