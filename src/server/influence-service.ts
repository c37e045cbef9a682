import type DataLoader from "dataloader";
import { type Database, logQuery, ordinalsContainingToken, type QueryLogEntry, recentQueries, type Sequence } from "../db/index.js";
import {
  type DistributionArgs,
  type InfluenceArgs,
  type SequenceScoresArgs,
  checkDistributionArgs,
  checkInfluenceArgs,
  checkSequenceScoresArgs,
} from "../engine/query-validation.js";
import type {
  DistributionResult,
  ExactScore,
  InfluenceEngine,
  InfluenceHit,
  InfluenceRequest,
  InfluenceResult,
  SequenceScoresResult,
} from "../engine/types.js";
import { InputError } from "../util/errors.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import type { CorpusRef } from "./corpus.js";
import { toServerError } from "./errors.js";
import type { OfIndex } from "./of-index.js";
import type { ServerLogger } from "./logger.js";
import type { SequenceService } from "./sequence-service.js";

export const DEFAULT_RECENT_QUERIES = 20;

export interface InfluenceServiceDeps {
  /** The index's name: logged with each query, and given to the hits. */
  name: string;
  engine: InfluenceEngine;
  db: Database;
  tokenizer: Tokenizer;
  corpus: CorpusRef;
  sequences: SequenceService;
  logger: ServerLogger;
}

/** An influence answer whose hits are named with the index, for their sequences. */
export type NamedInfluenceResult = Omit<InfluenceResult, "hits"> & { hits: OfIndex<InfluenceHit>[] };

/** A scoreSequences answer whose compared sequence is named with the index. */
export type NamedSequenceScores = Omit<SequenceScoresResult, "original"> & { original?: OfIndex<ExactScore> };

/**
 * Influence queries as the API offers them: checks the arguments against the model and the index,
 * turns the `containsToken` filter into the ordinals the vector search may return, runs the engine,
 * and records every query, answered or refused, in the query log (after answering it).
 */
export class InfluenceService {
  /** Log inserts not yet written: each is written after its query's answer, and waited for by a read of the log and on close. */
  readonly #pendingLogs = new Set<Promise<void>>();

  constructor(private readonly deps: InfluenceServiceDeps) {}

  /**
   * `sequences` is the request's loader: the hits' sequences are loaded through it for the log, so
   * that resolving `hit.sequence` afterwards costs no further database round trip.
   */
  async influence(
    args: InfluenceArgs,
    options: { tokenScores: boolean; sequences: DataLoader<number, OfIndex<Sequence> | null> },
  ): Promise<NamedInfluenceResult> {
    return this.#logged("influence", args, async () => {
      const result = await this.deps.engine.influence(await this.#influenceRequest(args, options.tokenScores));
      const sequences = await Promise.all(result.hits.map((hit) => this.deps.sequences.atOrdinal(options.sequences, hit.ordinal)));
      const hits = result.hits.map((hit) => ({ ...hit, index: this.deps.name }));
      return { result: { ...result, hits }, timings: result.timings, topHitIds: sequences.map((s) => s.externalId) };
    });
  }

  async distribution(args: DistributionArgs): Promise<DistributionResult> {
    return this.#logged("influenceDistribution", args, async () => {
      const { engine, tokenizer } = this.deps;
      return { result: await engine.distribution(checkDistributionArgs(args, tokenizer, engine.info())), timings: {}, topHitIds: [] };
    });
  }

  /** Sequences scored as training sequences, beside the indexed sequence `compareWith` names (by id) and its variants. */
  async scoreSequences(args: SequenceScoresArgs): Promise<NamedSequenceScores> {
    return this.#logged("scoreSequences", args, async () => {
      const { engine, tokenizer, sequences } = this.deps;
      const { compareWith, ...request } = checkSequenceScoresArgs(args, tokenizer, engine.info());
      const compared = compareWith === undefined ? undefined : await sequences.byExternalId(compareWith);
      if (compared === null) throw new InputError(`compareWith: the index has no sequence with id ${JSON.stringify(compareWith)}`);
      const { original, ...result } = await engine.scoreSequences({ ...request, ...(compared ? { compareWith: compared.ordinal } : {}) });
      return {
        result: { ...result, ...(original && { original: { ...original, index: this.deps.name } }) },
        timings: result.timings,
        topHitIds: compared ? [compared.externalId] : [],
      };
    });
  }

  /** The latest logged queries, every query answered before this call among them. */
  async recentQueries(limit?: number | null): Promise<QueryLogEntry[]> {
    await this.flushLog();
    return recentQueries(this.deps.db, limit ?? DEFAULT_RECENT_QUERIES);
  }

  /** Waits until every query answered so far is logged (or its failure to log is reported). */
  async flushLog(): Promise<void> {
    await Promise.all(this.#pendingLogs);
  }

  async #influenceRequest(args: InfluenceArgs, tokenScores: boolean): Promise<InfluenceRequest> {
    const { engine, tokenizer, db, corpus } = this.deps;
    const { containsTokenId, ...request } = checkInfluenceArgs(args, tokenizer, engine.info(), tokenScores);
    const allowedOrdinals = containsTokenId === undefined ? undefined : await ordinalsContainingToken(db, await corpus.id(), containsTokenId);
    return { ...request, allowedOrdinals };
  }

  /** Runs `run` and logs the query with its timings and top hits, or with the error it failed with. */
  async #logged<T>(operation: string, args: object, run: () => Promise<{ result: T; timings: Record<string, number>; topHitIds: string[] }>): Promise<T> {
    const started = performance.now();
    const parameters = { operation, ...withoutAbsent(args), index: this.deps.name };
    const serviceMs = () => performance.now() - started;
    try {
      const { result, timings, topHitIds } = await run();
      this.#logAfterAnswer({ parameters, timings: { ...timings, serviceMs: serviceMs() }, topHitIds });
      return result;
    } catch (err) {
      const error = toServerError(err);
      this.#logAfterAnswer({ parameters, timings: { serviceMs: serviceMs() }, topHitIds: [], error: `${error.code}: ${error.message}` });
      throw error;
    }
  }

  /**
   * Logs the query once its answer is on its way (the next turn of the event loop): awaited before
   * answering, the insert took ~1 ms of a default query's time, on the thread that serves every
   * request (PGlite runs there).
   */
  #logAfterAnswer(entry: Parameters<typeof logQuery>[1]): void {
    const pending = new Promise((resolve) => setImmediate(resolve)).then(() => this.#log(entry));
    this.#pendingLogs.add(pending);
    void pending.finally(() => this.#pendingLogs.delete(pending));
  }

  /** A query that cannot be logged (e.g. the database is down) is still answered; the failure is reported. */
  async #log(entry: Parameters<typeof logQuery>[1]): Promise<void> {
    try {
      await logQuery(this.deps.db, entry);
    } catch (err) {
      this.deps.logger.warn(`could not log a query: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}

/** The arguments the query ran with, schema defaults included; absent ones (undefined or null) left out. */
function withoutAbsent(args: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(args).filter(([, v]) => v != null));
}
