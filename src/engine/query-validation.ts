/**
 * Checks of influence-query arguments, with messages meant for the person who typed the query:
 * run once, at the edge (the GraphQL services and `influence query`), before the engine, which
 * trusts what it is given. Everything here throws InputError, which the server reports as
 * BAD_USER_INPUT and the CLI with exit code 2.
 */
import { BINS, CANDIDATES, SCORED_SEQUENCES, SEQUENCE_TOKENS, TOP_K } from "../indexer/query-limits.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { InputError } from "../util/errors.js";
import type { DistributionRequest, IndexInfo, InfluenceRequest, SequenceScoresRequest } from "./types.js";

/** A query as the GraphQL arguments or the CLI's options give it: text or token ids; null means absent. */
export interface QueryArgs {
  prompt?: string | null;
  completion?: string | null;
  promptTokens?: number[] | null;
  completionTokens?: number[] | null;
  layers?: number[] | null;
  completionPositions?: number[] | null;
}

export interface InfluenceArgs extends QueryArgs {
  topK?: number | null;
  containsToken?: string | null;
  candidates?: number | null;
  rerank?: boolean | null;
}

export interface DistributionArgs extends QueryArgs {
  bins?: number | null;
}

/** Sequences to score as training sequences, as text or as token ids (never both); null means absent. */
export interface SequencesArgs {
  sequences?: string[] | null;
  sequenceTokens?: number[][] | null;
}

export interface SequenceScoresArgs extends QueryArgs, SequencesArgs {
  /** Id of the indexed sequence to score beside them. */
  compareWith?: string | null;
  variants?: boolean | null;
}

/** A scoreSequences request as the engine takes it, but for the compared sequence's ordinal, which the caller looks up by id. */
export interface CheckedSequenceScoresArgs extends Omit<SequenceScoresRequest, "compareWith"> {
  compareWith?: string;
}

/** An influence request as the engine takes it, but for the sequences a `containsToken` filter allows, which the caller looks up. */
export interface CheckedInfluenceArgs extends Omit<InfluenceRequest, "allowedOrdinals"> {
  /** The token a hit's sequence must contain. */
  containsTokenId?: number;
}

/** Every argument of an influence query, checked, with the defaults filled in. */
export function checkInfluenceArgs(args: InfluenceArgs, tokenizer: Tokenizer, info: IndexInfo, tokenScores: boolean): CheckedInfluenceArgs {
  const query = checkQuery(args, tokenizer, info);
  const topK = checkTopK(args.topK ?? TOP_K.default);
  const candidates = args.candidates == null ? undefined : checkCandidates(args.candidates, topK);
  const containsTokenId = args.containsToken == null ? undefined : tokenIdOf(args.containsToken, tokenizer);
  return { ...query, topK, candidates, rerank: args.rerank ?? false, tokenScores, ...(containsTokenId === undefined ? {} : { containsTokenId }) };
}

/** Every argument of a distribution query, checked, with the defaults filled in. */
export function checkDistributionArgs(args: DistributionArgs, tokenizer: Tokenizer, info: IndexInfo): DistributionRequest {
  return { ...checkQuery(args, tokenizer, info), bins: checkBins(args.bins ?? BINS.default) };
}

/** Every argument of a scoreSequences request, checked, with the defaults filled in. */
export function checkSequenceScoresArgs(args: SequenceScoresArgs, tokenizer: Tokenizer, info: IndexInfo): CheckedSequenceScoresArgs {
  const query = checkQuery(args, tokenizer, info);
  const sequences = checkSequences(args, tokenizer, info.model.contextLength);
  const variants = args.variants ?? false;
  if (args.compareWith === "") throw new InputError("compareWith is empty: give the id of an indexed sequence, or leave compareWith out");
  if (variants && args.compareWith == null)
    throw new InputError("variants needs compareWith: the id of the indexed sequence whose word-order variants to score");
  if (sequences.length === 0 && !variants) {
    throw new InputError("nothing to score: give sequences (text) or sequenceTokens (token ids), or compareWith with variants: true");
  }
  return { ...query, sequences, variants, ...(args.compareWith == null ? {} : { compareWith: args.compareWith }) };
}

/** How the edge calls the two forms of sequences in its messages: GraphQL's argument names, or the CLI's options. */
export const SEQUENCE_ARGUMENT_NAMES = { text: "sequences", tokens: "sequenceTokens" };

/**
 * Sequences to score as training sequences, in token ids: each SEQUENCE_TOKENS.min tokens to the
 * context long, at most SCORED_SEQUENCES.max of them. None when neither form is given.
 */
export function checkSequences(args: SequencesArgs, tokenizer: Tokenizer, contextLength: number, names = SEQUENCE_ARGUMENT_NAMES): number[][] {
  if (args.sequences != null && args.sequenceTokens != null) {
    throw new InputError(`give the sequences either as text (${names.text}) or as token ids (${names.tokens}), not both`);
  }
  const name = args.sequences != null ? names.text : names.tokens;
  const given = args.sequences ?? args.sequenceTokens ?? [];
  if (given.length > SCORED_SEQUENCES.max)
    throw new InputError(`${name} has ${given.length} sequences, more than the limit of ${SCORED_SEQUENCES.max} per request`);
  return given.map((sequence, i) => {
    const where = `${name}[${i}]`;
    if (sequence.length === 0) throw new InputError(`${where} is empty: a training sequence needs at least ${SEQUENCE_TOKENS.min} tokens`);
    // Text is encoded as the corpus's documents are: a sequence of its own.
    const tokens = typeof sequence === "string" ? tokenizer.encodeSequence(sequence) : checkTokenIds(where, sequence, tokenizer);
    if (tokens.length < SEQUENCE_TOKENS.min) {
      throw new InputError(
        `${where} is ${tokens.length} token: a training sequence needs at least ${SEQUENCE_TOKENS.min} (its first token predicts the second)`,
      );
    }
    if (tokens.length > contextLength) throw new InputError(`${where} is ${tokens.length} tokens, more than the model's context of ${contextLength}`);
    return tokens;
  });
}

/** The query in token ids, checked against the model and the index; layers and positions ascending. */
type CheckedQuery = Pick<InfluenceRequest, "promptTokens" | "completionTokens" | "layers" | "completionPositions">;

function checkQuery(args: QueryArgs, tokenizer: Tokenizer, info: IndexInfo): CheckedQuery {
  for (const name of ["prompt", "completion"] as const) {
    if (args[name] === "") throw new InputError(`${name} is empty: give some text, or leave ${name} out`);
  }
  for (const name of ["promptTokens", "completionTokens"] as const) {
    if (args[name]?.length === 0) throw new InputError(`${name} is empty: give some token ids, or leave ${name} out`);
  }
  const asText = args.prompt != null || args.completion != null;
  const asTokens = args.promptTokens != null || args.completionTokens != null;
  if (asText && asTokens) {
    throw new InputError("give the query either as text (prompt, completion) or as token ids (promptTokens, completionTokens), not both");
  }
  if (args.prompt != null && args.completion == null) throw new InputError("prompt was given without completion: influence is measured on a completion");
  if (args.promptTokens != null && args.completionTokens == null) {
    throw new InputError("promptTokens were given without completionTokens: influence is measured on a completion");
  }
  if (args.completion == null && args.completionTokens == null) {
    throw new InputError("completion is required: give it as text (completion) or as token ids (completionTokens)");
  }

  // The prompt starts the sequence (with the tokenizer's BOS, if any) and the completion continues it.
  const promptTokens = asText ? tokenizer.encodeSequence(args.prompt ?? "") : checkTokenIds("promptTokens", args.promptTokens ?? [], tokenizer);
  const completionTokens = asText
    ? tokenizer.encodeContinuation(args.completion ?? "")
    : checkTokenIds("completionTokens", args.completionTokens ?? [], tokenizer);
  const { contextLength } = info.model;
  const total = promptTokens.length + completionTokens.length;
  if (total > contextLength) {
    throw new InputError(
      `prompt and completion are ${total} tokens (${promptTokens.length} + ${completionTokens.length}), more than the model's context of ${contextLength}`,
    );
  }
  return {
    promptTokens,
    completionTokens,
    layers: args.layers == null ? undefined : checkLayers(args.layers, info.layers),
    completionPositions: args.completionPositions == null ? undefined : checkPositions(args.completionPositions, completionTokens.length),
  };
}

function checkTokenIds(name: string, ids: number[], tokenizer: Tokenizer): number[] {
  ids.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= tokenizer.vocabSize)
      throw new InputError(`${name}[${i}] = ${id} is not a token id (the vocabulary has ids 0 to ${tokenizer.vocabSize - 1})`);
  });
  return ids;
}

function checkLayers(layers: number[], known: readonly number[]): number[] {
  if (layers.length === 0) throw new InputError("layers is empty: name at least one layer, or leave layers out for all of them");
  for (const layer of layers) {
    if (!known.includes(layer)) throw new InputError(`unknown layer ${layer}: the index has layers ${known.join(", ")}`);
  }
  if (new Set(layers).size !== layers.length) throw new InputError("layers names a layer more than once");
  return [...layers].sort((a, b) => a - b);
}

function checkPositions(positions: number[], completionLength: number): number[] {
  if (positions.length === 0) throw new InputError("completionPositions is empty: name at least one position, or leave it out for all of them");
  for (const p of positions) {
    if (p < 0 || p >= completionLength) {
      throw new InputError(`completion position ${p} is out of range: the completion has ${completionLength} tokens (positions 0 to ${completionLength - 1})`);
    }
  }
  if (new Set(positions).size !== positions.length) throw new InputError("completionPositions names a position more than once");
  return [...positions].sort((a, b) => a - b);
}

function checkTopK(topK: number): number {
  if (!Number.isInteger(topK) || topK < TOP_K.min || topK > TOP_K.max) throw new InputError(`topK must be from ${TOP_K.min} to ${TOP_K.max} (got ${topK})`);
  return topK;
}

function checkCandidates(candidates: number, topK: number): number {
  if (!Number.isInteger(candidates) || candidates < topK || candidates > CANDIDATES.max) {
    throw new InputError(`candidates must be from topK (${topK}) to ${CANDIDATES.max} (got ${candidates})`);
  }
  return candidates;
}

function checkBins(bins: number): number {
  if (!Number.isInteger(bins) || bins < BINS.min || bins > BINS.max) throw new InputError(`bins must be from ${BINS.min} to ${BINS.max} (got ${bins})`);
  return bins;
}

/** The token id of a `containsToken` filter: one token of text, or `#<id>`. */
function tokenIdOf(value: string, tokenizer: Tokenizer): number {
  if (value === "") throw new InputError('containsToken is empty: give one token, e.g. " the" or "#262"');
  const byId = /^#(\d+)$/.exec(value);
  if (byId) {
    const id = Number(byId[1]);
    if (id >= tokenizer.vocabSize) throw new InputError(`containsToken ${value}: no such token id (the vocabulary has ids 0 to ${tokenizer.vocabSize - 1})`);
    return id;
  }
  const ids = tokenizer.encode(value);
  if (ids.length !== 1) {
    const pieces = ids.map((id) => JSON.stringify(tokenizer.tokenText(id))).join(", ");
    throw new InputError(
      `containsToken ${JSON.stringify(value)} is ${ids.length} tokens (${pieces}), not one: give a single token ` +
        `(a leading space is part of a word's token, e.g. " the") or its id as "#<id>"`,
    );
  }
  return ids[0];
}
