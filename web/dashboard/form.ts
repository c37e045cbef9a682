/** The query form's values, and their translation to API arguments and back from the query log. */
import { DEMO_QUERIES } from "../../scripts/demo-queries.ts";
import type { InfluenceArgs, QueryArgs } from "./queries.ts";

export type InputMode = "text" | "tokens";

export interface FormValues {
  /** Text, or token ids written as "464, 2068, 13". */
  mode: InputMode;
  prompt: string;
  completion: string;
  topK: number;
  /** Selected layers; null for every layer of the index (no restriction sent). */
  layers: number[] | null;
  containsToken: string;
  /** Re-score the best candidates exactly, or keep the index's scores (the API's default). */
  rerank: boolean;
  /** Candidates taken from the vector index; null for the server's default. */
  candidates: number | null;
}

/** The README's demo questions, which the demo index answers with evidently related entries. */
export const EXAMPLES = DEMO_QUERIES.map(({ prompt, completion, theme }) => ({ prompt, completion, theme }));

/** The form of an example question, every other field at its default. */
export function exampleValues(example: { prompt: string; completion: string }): FormValues {
  return { mode: "text", prompt: example.prompt, completion: example.completion, topK: 10, layers: null, containsToken: "", rerank: false, candidates: null };
}

export const INITIAL_VALUES: FormValues = exampleValues(EXAMPLES[0]);

/** A form the browser cannot turn into a request (the server checks everything else). */
export class FormError extends Error {}

function parseTokenIds(field: string, text: string): number[] {
  const parts = text.split(/[\s,]+/).filter(Boolean);
  if (!parts.every((p) => /^\d+$/.test(p))) throw new FormError(`${field}: token ids are whole numbers separated by spaces or commas`);
  return parts.map(Number);
}

/** The query of the form (text or token ids, and layers), as every operation on it takes it. */
export function toQueryArgs(values: FormValues): QueryArgs {
  const query =
    values.mode === "text"
      ? { prompt: values.prompt, completion: values.completion }
      : { promptTokens: parseTokenIds("prompt", values.prompt), completionTokens: parseTokenIds("completion", values.completion) };
  return { ...query, layers: values.layers ?? undefined };
}

/** The API arguments of the form; empty fields are sent as they are so the server explains what is wrong. */
export function toInfluenceArgs(values: FormValues): InfluenceArgs {
  return {
    ...toQueryArgs(values),
    topK: values.topK,
    containsToken: values.containsToken === "" ? undefined : values.containsToken,
    rerank: values.rerank,
    candidates: values.candidates ?? undefined,
  };
}

const text = (value: unknown): string => (typeof value === "string" ? value : "");
const ids = (value: unknown): string => (Array.isArray(value) ? value.join(", ") : "");

/** The form as it was for a logged influence query (its `parameters`, as the server recorded them). */
export function fromLoggedParameters(parameters: Record<string, unknown>): FormValues {
  const tokens = Array.isArray(parameters.promptTokens) || Array.isArray(parameters.completionTokens);
  return {
    mode: tokens ? "tokens" : "text",
    prompt: tokens ? ids(parameters.promptTokens) : text(parameters.prompt),
    completion: tokens ? ids(parameters.completionTokens) : text(parameters.completion),
    topK: typeof parameters.topK === "number" ? parameters.topK : INITIAL_VALUES.topK,
    layers: Array.isArray(parameters.layers) ? parameters.layers.filter((l): l is number => typeof l === "number") : null,
    containsToken: text(parameters.containsToken),
    rerank: parameters.rerank === true,
    candidates: typeof parameters.candidates === "number" ? parameters.candidates : null,
  };
}

/** How a query's hits were scored, in words. */
export function describeScoring(values: Pick<FormValues, "rerank" | "candidates">): string {
  const from = values.candidates === null ? "" : ` from ${values.candidates} candidates`;
  return values.rerank ? `exact EK-FAC re-ranking${from}` : `the index's scores${from}`;
}

/** One line naming a logged query, for the recent-queries list. */
export function describeLogged(parameters: Record<string, unknown>): string {
  const values = fromLoggedParameters(parameters);
  const query = values.mode === "text" ? `${values.prompt} ▸ ${values.completion}` : `[${values.prompt}] ▸ [${values.completion}]`;
  const extras = [
    `top ${values.topK}`,
    values.layers && `layers ${values.layers.join(",")}`,
    values.containsToken && `token "${values.containsToken}"`,
    describeScoring(values),
  ];
  return `${query} (${extras.filter(Boolean).join(", ")})`;
}

/**
 * The two indexes a dashboard link asks to compare (`?compare=A,B`, as `npm run demo -- --compare`
 * prints it), or undefined when the link names none.
 */
export function comparedIndexesOf(search: string): [string, string] | undefined {
  const names = new URLSearchParams(search).get("compare")?.split(",");
  return names?.length === 2 ? [names[0], names[1]] : undefined;
}
