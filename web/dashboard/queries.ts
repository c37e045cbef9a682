/** The dashboard's GraphQL operations and the shapes of their answers. */
import { graphql } from "./api.ts";

/** A query as the API takes it: text (prompt, completion) or token ids, never both. */
export interface QueryArgs {
  prompt?: string;
  completion?: string;
  promptTokens?: number[];
  completionTokens?: number[];
  /** Absent: every layer of the index. */
  layers?: number[];
}

export interface InfluenceArgs extends QueryArgs {
  topK: number;
  containsToken?: string;
  rerank?: boolean;
  candidates?: number;
}

export interface IndexMeta {
  index: { name: string; model: { architecture: string; contextLength: number }; corpus: { name: string; sequences: number } };
  layers: Array<{ layer: number }>;
  /** Every served index, the default first. */
  indexes: Array<{ name: string; model: { architecture: string; layers: number }; corpus: { name: string; sequences: number } }>;
}

export interface TokenScore {
  position: number;
  tokenId: number;
  text: string;
  score: number;
}

export interface Hit {
  rank: number;
  score: number;
  /** Which tier computed score: exact EK-FAC, the index's sketch or its projected vectors. */
  scoredBy: "EXACT" | "SKETCH" | "PROJECTED";
  approxScore: number;
  layerScores: Array<{ layer: number; score: number }>;
  tokenScores: TokenScore[];
  sequence: { id: string };
}

export interface InfluenceAnswer {
  query: { tokenTexts: string[]; loss: number };
  hits: Hit[];
  timings: { totalMs: number };
}

export interface PowerLaw {
  alpha: number;
  xMin: number;
  ksDistance: number;
  tailCount: number;
}

export interface Distribution {
  count: number;
  topScores: number[];
  powerLaw: PowerLaw | null;
  topPercentShare: number;
  histogram: Array<{ lower: number; upper: number; count: number }>;
}

export interface LoggedQuery {
  id: string;
  createdAt: string;
  parameters: Record<string, unknown>;
  error: string | null;
}

const QUERY_VARIABLES = "$prompt: String, $completion: String, $promptTokens: [Int!], $completionTokens: [Int!], $layers: [Int!]";
const QUERY_ARGUMENTS = "prompt: $prompt, completion: $completion, promptTokens: $promptTokens, completionTokens: $completionTokens, layers: $layers";

export async function fetchMeta(): Promise<IndexMeta> {
  return graphql<IndexMeta>(`query DashboardMeta {
    index { name model { architecture contextLength } corpus { name sequences } }
    layers { layer }
    indexes { name model { architecture layers } corpus { name sequences } }
  }`);
}

export async function fetchInfluence(args: InfluenceArgs): Promise<InfluenceAnswer> {
  const data = await graphql<{ influence: InfluenceAnswer }>(
    `query DashboardInfluence(${QUERY_VARIABLES}, $topK: Int, $containsToken: String, $rerank: Boolean, $candidates: Int) {
      influence(${QUERY_ARGUMENTS}, topK: $topK, containsToken: $containsToken, rerank: $rerank, candidates: $candidates) {
        query { tokenTexts loss }
        hits {
          rank score scoredBy approxScore
          layerScores { layer score }
          tokenScores { position tokenId text score }
          sequence { id }
        }
        timings { totalMs }
      }
    }`,
    args,
  );
  return data.influence;
}

export async function fetchDistribution(args: QueryArgs): Promise<Distribution> {
  const data = await graphql<{ influenceDistribution: Distribution }>(
    `query DashboardDistribution(${QUERY_VARIABLES}) {
      influenceDistribution(${QUERY_ARGUMENTS}, bins: 30) {
        count topScores topPercentShare
        powerLaw { alpha xMin ksDistance tailCount }
        histogram { lower upper count }
      }
    }`,
    args,
  );
  return data.influenceDistribution;
}

/** How many log entries to read per distinct query shown: repeats and distribution runs are skipped. */
const LOG_ENTRIES_PER_QUERY = 5;

/** The latest distinct influence searches, newest first (a query run again shows once, at its latest time). */
export async function fetchRecentInfluenceQueries(limit: number): Promise<LoggedQuery[]> {
  const data = await graphql<{ recentQueries: LoggedQuery[] }>(
    `query DashboardRecent($limit: Int) { recentQueries(limit: $limit) { id createdAt parameters error } }`,
    { limit: limit * LOG_ENTRIES_PER_QUERY },
  );
  const seen = new Set<string>();
  return data.recentQueries
    .filter((q) => {
      const key = JSON.stringify(q.parameters);
      if (q.parameters.operation !== "influence" || seen.has(key)) return false;
      seen.add(key);
      return true;
    })
    .slice(0, limit);
}

export interface SequenceDetail {
  id: string;
  documentId: string;
  offset: number;
  tokenCount: number;
  text: string | null;
  tokens: number[];
}

const SEQUENCE_FIELDS = "id documentId offset tokenCount text tokens";

export async function fetchSequence(id: string): Promise<SequenceDetail | null> {
  const data = await graphql<{ sequence: SequenceDetail | null }>(`query DashboardSequence($id: ID!) { sequence(id: $id) { ${SEQUENCE_FIELDS} } }`, { id });
  return data.sequence;
}

export interface SequencePage {
  totalCount: number;
  sequences: SequenceDetail[];
  endCursor: string | null;
  hasNextPage: boolean;
}

/** One page of the corpus in corpus order, only sequences whose text contains `search` when it is not empty. */
export async function fetchSequences(search: string, first: number, after: string | null): Promise<SequencePage> {
  const data = await graphql<{
    sequences: { totalCount: number; edges: Array<{ node: SequenceDetail }>; pageInfo: { endCursor: string | null; hasNextPage: boolean } };
  }>(
    `query DashboardSequences($search: String, $first: Int, $after: String) {
      sequences(search: $search, first: $first, after: $after) {
        totalCount
        edges { node { ${SEQUENCE_FIELDS} } }
        pageInfo { endCursor hasNextPage }
      }
    }`,
    { search: search === "" ? null : search, first, after },
  );
  const { totalCount, edges, pageInfo } = data.sequences;
  return { totalCount, sequences: edges.map((e) => e.node), ...pageInfo };
}

/** Where a scored sequence comes from: given (edited text) or one of the compared sequence's word-order variants. */
export type SequenceKind = "GIVEN" | "SENTENCES_SWAPPED" | "HALVES_SWAPPED" | "PARTS_SWAPPED" | "BEFORE_REMOVED" | "AFTER_REMOVED";

export interface ScoredSequence {
  kind: SequenceKind;
  text: string;
  score: number;
  change: number | null;
  tokenScores: TokenScore[];
}

export interface WhatIfAnswer {
  original: { score: number; tokenScores: TokenScore[]; sequence: { id: string; text: string | null } };
  sequences: ScoredSequence[];
}

/** An indexed sequence beside texts scored as training sequences (and, on request, its word-order variants), for one query. */
export async function fetchWhatIf(query: QueryArgs, compareWith: string, options: { sequences?: string[]; variants?: boolean }): Promise<WhatIfAnswer> {
  const data = await graphql<{ scoreSequences: WhatIfAnswer }>(
    `query DashboardWhatIf(${QUERY_VARIABLES}, $sequences: [String!], $compareWith: ID, $variants: Boolean) {
      scoreSequences(${QUERY_ARGUMENTS}, sequences: $sequences, compareWith: $compareWith, variants: $variants) {
        original { score tokenScores { position tokenId text score } sequence { id text } }
        sequences { kind text score change tokenScores { position tokenId text score } }
      }
    }`,
    { ...query, compareWith, ...options },
  );
  return data.scoreSequences;
}

export interface ComparedHit {
  rank: number;
  score: number;
  tokenOverlap: number;
  sequence: { id: string };
}

export interface IndexInfluence {
  index: string;
  hits: ComparedHit[];
  layerShares: Array<{ layer: number; score: number; share: number }>;
  meanTokenOverlap: number;
}

export interface HitOverlap {
  indexes: string[];
  count: number;
  jaccard: number;
  ids: string[];
  rankCorrelation: number | null;
  idsMatch: boolean | null;
}

export interface Comparison {
  results: IndexInfluence[];
  overlaps: HitOverlap[];
}

/** One query asked of several indexes: their hits side by side and the overlap of their top hits. */
export async function fetchComparison(query: QueryArgs, indexes: string[], topK: number): Promise<Comparison> {
  const data = await graphql<{ compareInfluence: Comparison }>(
    `query DashboardCompare(${QUERY_VARIABLES}, $indexes: [String!]!, $topK: Int) {
      compareInfluence(${QUERY_ARGUMENTS}, indexes: $indexes, topK: $topK) {
        results { index hits { rank score tokenOverlap sequence { id } } layerShares { layer score share } meanTokenOverlap }
        overlaps { indexes count jaccard ids rankCorrelation idsMatch }
      }
    }`,
    { ...query, indexes, topK },
  );
  return data.compareInfluence;
}
