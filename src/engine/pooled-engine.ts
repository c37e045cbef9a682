import { candidatesRanked, stagedInfluence } from "./hits.js";
import type {
  CandidateSet,
  ComparedSequence,
  DistributionRequest,
  DistributionResult,
  ExactScore,
  IndexInfo,
  InfluenceEngine,
  InfluenceRequest,
  InfluenceResult,
  QueryInfo,
  QueryTokens,
  ScoringRequest,
  SequenceScore,
  SequenceScoresRequest,
  SequenceScoresResult,
} from "./types.js";
import { scoreWithVariants } from "./what-if.js";
import type { WorkerHandlers } from "../workers/worker-host.js";
import type { WorkerPool } from "../workers/worker-pool.js";

/**
 * The engine run in a pool of worker threads: each worker opens its own engine (see
 * `engineHandlers`) and the server's event loop stays free for other requests. A query runs its
 * search on one worker and spreads exact scoring, nearly all of a re-ranked query's time, over
 * the idle workers: one query on an idle server takes a fraction of one worker's time.
 */
export class PooledEngine implements InfluenceEngine {
  readonly #info: IndexInfo;

  private constructor(
    readonly pool: WorkerPool,
    info: IndexInfo,
  ) {
    this.#info = info;
  }

  /**
   * Waits until every worker has loaded its engine (one `info` request each, under `loadTimeoutMs`
   * rather than the pool's per-request limit), and keeps the index description the server needs
   * synchronously. When one fails (a damaged file), the others are still let finish opening before
   * the failure is thrown: the caller then closes the pool, and a worker terminated inside an ONNX
   * Runtime call aborts the process.
   */
  static async open(pool: WorkerPool, loadTimeoutMs = 600_000): Promise<PooledEngine> {
    const answers = await Promise.allSettled(
      Array.from({ length: pool.metrics().size }, () => pool.run<IndexInfo>("info", null, { timeoutMs: loadTimeoutMs })),
    );
    const failed = answers.find((a) => a.status === "rejected");
    if (failed) throw failed.reason;
    return new PooledEngine(pool, (answers[0] as PromiseFulfilledResult<IndexInfo>).value);
  }

  info(): IndexInfo {
    return this.#info;
  }

  influence(request: InfluenceRequest): Promise<InfluenceResult> {
    return stagedInfluence(this, request);
  }

  candidates(request: InfluenceRequest): Promise<CandidateSet> {
    return this.pool.run("candidates", request);
  }

  async exactScores(request: ScoringRequest, ordinals: number[]): Promise<ExactScore[]> {
    if (ordinals.length === 0) return [];
    const parts = await this.#dealt(ordinals, (part) => this.pool.run<ExactScore[]>("exactScores", { request, ordinals: part }));
    return parts.flat();
  }

  comparedSequence(request: QueryTokens, ordinal: number, variants: boolean): Promise<ComparedSequence> {
    return this.pool.run("comparedSequence", { request, ordinal, variants });
  }

  async sequenceScores(request: QueryTokens, sequences: number[][]): Promise<{ query: QueryInfo; scores: SequenceScore[] }> {
    const parts = await this.#dealt(sequences, (part) =>
      this.pool.run<{ query: QueryInfo; scores: SequenceScore[] }>("sequenceScores", { request, sequences: part }),
    );
    return { query: parts[0].query, scores: undealt(parts.map((p) => p.scores)) };
  }

  scoreSequences(request: SequenceScoresRequest): Promise<SequenceScoresResult> {
    return scoreWithVariants(this, request);
  }

  /**
   * Items dealt out in turn to one part per idle worker (at least one part, even of no items), so
   * that each part gets a like mix of lengths. Only idle workers take a part: they start at once,
   * and a busy server queues one job per request as before, so splitting never takes queue places
   * other requests were counting on.
   */
  async #dealt<T, R>(items: readonly T[], run: (part: T[]) => Promise<R>): Promise<R[]> {
    const { size, busy } = this.pool.metrics();
    const count = Math.max(1, Math.min(size - busy, items.length));
    return Promise.all(Array.from({ length: count }, (_, p) => run(items.filter((_, i) => i % count === p))));
  }

  distribution(request: DistributionRequest): Promise<DistributionResult> {
    return this.pool.run("distribution", request);
  }

  /** Waits for running passes: a worker terminated inside an ONNX Runtime run aborts the process. */
  close(): Promise<void> {
    return this.pool.close({ finishRunning: true });
  }
}

/** A worker's side of PooledEngine: `hostWorker(engineHandlers(await openMyEngine()))`. */
export function engineHandlers(engine: InfluenceEngine): WorkerHandlers {
  return {
    info: async () => engine.info(),
    candidates: async (payload) => {
      const request = payload as InfluenceRequest;
      const found = await engine.candidates(request);
      return { ...found, candidates: [...candidatesRanked(request, found.candidates)] };
    },
    exactScores: (payload) => {
      const { request, ordinals } = payload as { request: ScoringRequest; ordinals: number[] };
      return engine.exactScores(request, ordinals);
    },
    comparedSequence: (payload) => {
      const { request, ordinal, variants } = payload as { request: QueryTokens; ordinal: number; variants: boolean };
      return engine.comparedSequence(request, ordinal, variants);
    },
    sequenceScores: (payload) => {
      const { request, sequences } = payload as { request: QueryTokens; sequences: number[][] };
      return engine.sequenceScores(request, sequences);
    },
    distribution: (payload) => engine.distribution(payload as DistributionRequest),
  };
}

/** The items of parts made by dealing in turn (`#dealt`), back in their first order. */
function undealt<T>(parts: readonly T[][]): T[] {
  const total = parts.reduce((n, p) => n + p.length, 0);
  return Array.from({ length: total }, (_, i) => parts[i % parts.length][Math.floor(i / parts.length)]);
}
