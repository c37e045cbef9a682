/**
 * Rotary position embedding's inverse frequencies, and the `rope_scaling` of a config that changes
 * them (Hugging Face's ROPE_INIT_FUNCTIONS for the types this project implements).
 */
import { InputError } from "../util/errors.js";

export type RopeScaling =
  | { type: "linear"; factor: number }
  | { type: "llama3"; factor: number; lowFreqFactor: number; highFreqFactor: number; originalContextLength: number };

const TYPES = ["linear", "llama3"];

function positiveNumber(file: string, raw: Record<string, unknown>, key: string): number {
  const v = raw[key];
  if (typeof v !== "number" || !(v > 0) || !Number.isFinite(v)) {
    throw new InputError(`${file}: rope_scaling "${key}" must be a positive number, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** `rope_scaling` of config.json: null (or type "default") means none; other types are refused by name. */
export function parseRopeScaling(file: string, raw: unknown): RopeScaling | null {
  if (raw === null || raw === undefined) return null;
  if (typeof raw !== "object" || Array.isArray(raw)) throw new InputError(`${file}: "rope_scaling" must be an object or null`);
  const scaling = raw as Record<string, unknown>;
  // Older configs name the type `type`, newer ones `rope_type`.
  const type = scaling.rope_type ?? scaling.type;
  if (type === "default") return null;
  if (type === "linear") return { type, factor: positiveNumber(file, scaling, "factor") };
  if (type === "llama3") {
    const lowFreqFactor = positiveNumber(file, scaling, "low_freq_factor");
    const highFreqFactor = positiveNumber(file, scaling, "high_freq_factor");
    if (!(highFreqFactor > lowFreqFactor)) {
      throw new InputError(`${file}: rope_scaling "high_freq_factor" (${highFreqFactor}) must exceed "low_freq_factor" (${lowFreqFactor})`);
    }
    const original = scaling.original_max_position_embeddings;
    if (!Number.isSafeInteger(original) || (original as number) <= 0) {
      throw new InputError(`${file}: rope_scaling "original_max_position_embeddings" must be a positive integer, got ${JSON.stringify(original)}`);
    }
    return { type, factor: positiveNumber(file, scaling, "factor"), lowFreqFactor, highFreqFactor, originalContextLength: original as number };
  }
  throw new InputError(`${file}: rope_scaling type ${JSON.stringify(type)} is not supported (supported: null, ${TYPES.join(", ")})`);
}

/**
 * Inverse frequencies base^(-2i/dims), i < dims/2, of a rotary embedding over `dims` features, in
 * float64, rescaled as `scaling` says: linear divides them by the factor; llama3 divides those of
 * wavelengths above original/lowFreqFactor, keeps those below original/highFreqFactor, and
 * interpolates between (Hugging Face's _compute_llama3_parameters).
 */
export function inverseFrequencies(dims: number, base: number, scaling: RopeScaling | null): Float64Array {
  const plain = Float64Array.from({ length: dims / 2 }, (_, i) => base ** (-(2 * i) / dims));
  if (scaling === null) return plain;
  if (scaling.type === "linear") return plain.map((f) => f / scaling.factor);
  const { factor, lowFreqFactor, highFreqFactor, originalContextLength } = scaling;
  return plain.map((f) => {
    const wavelength = (2 * Math.PI) / f;
    if (wavelength < originalContextLength / highFreqFactor) return f;
    if (wavelength > originalContextLength / lowFreqFactor) return f / factor;
    const smooth = (originalContextLength / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}
