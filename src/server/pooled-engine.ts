import type { DistributionRequest, DistributionResult, IndexInfo, InfluenceEngine, InfluenceRequest, InfluenceResult } from "../engine/types.js";
import type { WorkerHandlers } from "./worker-host.js";
import type { WorkerPool } from "./worker-pool.js";

/**
 * The engine run in a pool of worker threads: each worker opens its own engine (see
 * `engineHandlers`) and the server's event loop stays free for other requests.
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
   * synchronously.
   */
  static async open(pool: WorkerPool, loadTimeoutMs = 600_000): Promise<PooledEngine> {
    const answers = await Promise.all(Array.from({ length: pool.metrics().size }, () => pool.run<IndexInfo>("info", null, { timeoutMs: loadTimeoutMs })));
    return new PooledEngine(pool, answers[0]);
  }

  info(): IndexInfo {
    return this.#info;
  }

  influence(request: InfluenceRequest): Promise<InfluenceResult> {
    return this.pool.run("influence", request);
  }

  distribution(request: DistributionRequest): Promise<DistributionResult> {
    return this.pool.run("distribution", request);
  }

  close(): Promise<void> {
    return this.pool.close();
  }
}

/** A worker's side of PooledEngine: `hostWorker(engineHandlers(await openMyEngine()))`. */
export function engineHandlers(engine: InfluenceEngine): WorkerHandlers {
  return {
    info: async () => engine.info(),
    influence: (payload) => engine.influence(payload as InfluenceRequest),
    distribution: (payload) => engine.distribution(payload as DistributionRequest),
  };
}
