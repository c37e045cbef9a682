/**
 * The contract between the influence engine (index search, exact re-scoring) and its callers:
 * the `influence query` command and the GraphQL server's worker pool. Plain data only, so that
 * requests and results cross worker-thread boundaries by structured clone. Requests are checked
 * before they get here (query-validation.ts, limits in indexer/query-limits.ts).
 */

/** A query given as text or as token ids (never both), as a client sends it. */
export interface QueryInput {
  prompt?: string;
  completion?: string;
  promptTokens?: number[];
  completionTokens?: number[];
}

/** A checked query: token ids within the vocabulary and the context, layers and positions ascending. */
export interface QueryTokens {
  promptTokens: number[];
  completionTokens: number[];
  /** Transformer blocks the score is restricted to (the sum over their MLP matrices); all when absent. */
  layers?: number[];
  /** 0-based positions within the completion whose loss is measured; all completion tokens when absent. */
  completionPositions?: number[];
}

/** A query whose exact scores are wanted, with or without their split by token. */
export interface ScoringRequest extends QueryTokens {
  /** Return each sequence's per-token scores too (they come with the pass; decoding each token's text is the cost). */
  tokenScores: boolean;
}

export interface InfluenceRequest extends ScoringRequest {
  /** Hits to return (TOP_K in indexer/query-limits.ts). */
  topK: number;
  /**
   * Only these sequences may be hits (applied inside the vector search). The server resolves its
   * `containsToken` filter to ordinals in PostgreSQL and passes them here.
   */
  allowedOrdinals?: number[];
  /** Candidates fetched from the vector index (and re-scored by the sketch, if the index has one), topK or more; default defaultCandidates. */
  candidates?: number;
  /** Re-score the best candidates exactly with EK-FAC (default false: scores come from the index); see exactRerankCount. */
  rerank: boolean;
}

export interface LayerScore {
  layer: number;
  score: number;
}

export interface TokenScore {
  /** Position in the training sequence; it carries the update that predicts the next token. */
  position: number;
  tokenId: number;
  text: string;
  score: number;
}

/**
 * What scored a hit: exact EK-FAC on the sequence's own gradient, the index's sketch (its second,
 * unbiased tier) or its projected vectors (the first tier, searched by HNSW).
 */
export type ScoreTier = "exact" | "sketch" | "projected";

export interface InfluenceHit {
  rank: number;
  /** Position of the sequence in the corpus: its vector label and database key. */
  ordinal: number;
  /** Exact EK-FAC score when re-ranked, else equal to approxScore. */
  score: number;
  /** Which tier `score` comes from. */
  scoredBy: ScoreTier;
  /** The index's own score: the sketch's inner product if the index has one, else the projected vectors'. */
  approxScore: number;
  layerScores: LayerScore[];
  /** Present when requested. */
  tokenScores?: TokenScore[];
}

/** A sequence found by the vector search, with the index's scores of it. */
export interface Candidate {
  ordinal: number;
  approxScore: number;
  /** Which of the index's tiers gave approxScore. */
  tier: Exclude<ScoreTier, "exact">;
  /** The same tier's score by layer, in the request's layers; only for the best topK candidates (the hits without re-ranking). */
  approxLayerScores?: LayerScore[];
}

/** The first stage of a query: the query itself and the search's candidates, best first (from a pool worker, only those it ranks: candidatesRanked). */
export interface CandidateSet {
  query: QueryInfo;
  candidates: Candidate[];
  gradientMs: number;
  searchMs: number;
}

/** The exact EK-FAC score of one sequence against a query (the second stage). */
export interface ExactScore {
  ordinal: number;
  score: number;
  layerScores: LayerScore[];
  /** Per-token scores, summing to the score; present when the request asks for token scores. */
  tokenScores?: TokenScore[];
}

/** The exact score of a token sequence scored as if it were a training sequence (not necessarily indexed). */
export interface SequenceScore {
  tokens: number[];
  /** The tokens decoded. */
  text: string;
  score: number;
  layerScores: LayerScore[];
  /** Summing to the score. */
  tokenScores: TokenScore[];
}

/** How a scored sequence came about: given by the client, or made from the compared indexed sequence (word-order-variants.ts). */
export type SequenceKind = "given" | VariantKind;

/** The built-in word-order variants of an indexed sequence (word-order-variants.ts defines each). */
export type VariantKind = "sentences-swapped" | "halves-swapped" | "parts-swapped" | "before-removed" | "after-removed";

export interface WordOrderVariant {
  kind: VariantKind;
  tokens: number[];
}

/** An indexed sequence's exact score with its token scores, and (when asked) its word-order variants. */
export interface ComparedSequence {
  original: ExactScore;
  variants: WordOrderVariant[];
}

export interface ScoredSequence extends SequenceScore {
  kind: SequenceKind;
  /** score minus the compared sequence's score; present when a sequence is compared with. */
  change?: number;
}

/** Sequences to score against a query as if they were training sequences, optionally beside an indexed one. */
export interface SequenceScoresRequest extends QueryTokens {
  /** Token sequences, checked (query-validation.ts): SEQUENCE_TOKENS to the context long, ids in the vocabulary. */
  sequences: number[][];
  /** Ordinal of the indexed sequence to score beside them. */
  compareWith?: number;
  /** Also score compareWith's word-order variants (requires compareWith). */
  variants: boolean;
}

export interface SequenceScoresResult {
  query: QueryInfo;
  /** The compared indexed sequence's exact score, with token scores; present when compareWith was given. */
  original?: ExactScore;
  /** The given sequences in order, then the variants. */
  sequences: ScoredSequence[];
  timings: { totalMs: number };
}

export interface QueryInfo {
  promptTokens: number[];
  completionTokens: number[];
  /** Decoded text of each prompt and completion token, in order. */
  tokenTexts: string[];
  /** Summed NLL of the measured completion tokens. */
  loss: number;
}

export interface InfluenceResult {
  query: QueryInfo;
  hits: InfluenceHit[];
  timings: { gradientMs: number; searchMs: number; rerankMs: number; totalMs: number };
}

export interface DistributionRequest extends QueryTokens {
  /** Histogram bins over the score range (BINS in indexer/query-limits.ts). */
  bins: number;
}

export interface HistogramBin {
  lower: number;
  upper: number;
  count: number;
}

export interface PowerLawFit {
  /** CDF(x) = 1 - (x / xMin)^-alpha for x >= xMin (Clauset, Shalizi & Newman 2009). */
  alpha: number;
  xMin: number;
  /** Kolmogorov-Smirnov distance between the fitted and empirical tail. */
  ksDistance: number;
  /** Scores at or above xMin. */
  tailCount: number;
}

export interface DistributionResult {
  query: QueryInfo;
  /** Indexed sequences, every one scored: by the sketch where the index has one, else by the projected vectors. */
  count: number;
  histogram: HistogramBin[];
  /** Positive scores sorted descending, at most DISTRIBUTION_TOP_SCORES, for log-log plots. */
  topScores: number[];
  /** null when fewer than 10 positive scores. */
  powerLaw: PowerLawFit | null;
  /** Share of the total positive influence carried by the top 1% of sequences. */
  topPercentShare: number;
}

export interface IndexInfo {
  model: { path: string; fingerprint: string; architecture: string; layers: number; embedding: number; vocabSize: number; contextLength: number };
  corpus: { name: string; path: string; fingerprint: string; sequences: number; tokens: number };
  /** Projected dimensions per MLP matrix (k_out x k_in) and in total. */
  dims: { kOut: number; kIn: number; total: number };
  layers: number[];
  modules: Array<{ name: string; layer: number; damping: number; offset: number; size: number }>;
  fisher: string;
  build: { id: number; startedAt: string; finishedAt: string; seconds: number; projectionSeed: number };
}

/** The engine as the server and CLI use it; errors for bad input are InputError with a clear message. */
export interface InfluenceEngine {
  info(): IndexInfo;
  /** Both stages of a query, ranked (hits.ts). */
  influence(request: InfluenceRequest): Promise<InfluenceResult>;
  /** Stage one alone: query gradient and vector search. */
  candidates(request: InfluenceRequest): Promise<CandidateSet>;
  /** Stage two alone, for any subset of sequences: exact scores against the request's query. */
  exactScores(request: ScoringRequest, ordinals: number[]): Promise<ExactScore[]>;
  /** The first stage of scoreSequences: the compared indexed sequence, and its variants, which its token scores decide. */
  comparedSequence(request: QueryTokens, ordinal: number, variants: boolean): Promise<ComparedSequence>;
  /** Exact scores of arbitrary token sequences, as if they were training sequences, with their query. */
  sequenceScores(request: QueryTokens, sequences: number[][]): Promise<{ query: QueryInfo; scores: SequenceScore[] }>;
  /** Sequences scored beside an indexed one and its word-order variants (what-if.ts). */
  scoreSequences(request: SequenceScoresRequest): Promise<SequenceScoresResult>;
  distribution(request: DistributionRequest): Promise<DistributionResult>;
  close(): Promise<void>;
}
