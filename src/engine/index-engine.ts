/**
 * The query path over an index folder: one query gradient, its projections, a maximum-inner-
 * product search of the first tier's vectors for candidates, their re-scoring by the second tier
 * (the sketch: unbiased, finer) when the index has one, and on request exact EK-FAC re-scoring of
 * the best with their training gradients recomputed from the token store, by layer and by token.
 */
import path from "node:path";
import { type ModuleFactors, preconditionedGradients } from "../ekfac/factors.js";
import { type ModuleQueries, denseModuleQueries, scoreCapture } from "../ekfac/scoring.js";
import { type SearchHits, exactTopK } from "../indexer/exact-search.js";
import { type IndexSet, openIndexSet } from "../indexer/layer-search.js";
import { type IndexManifest, indexPath, readIndexManifest } from "../indexer/index-manifest.js";
import { type TokenStore, readTokenStore } from "../indexer/token-store.js";
import { DISTRIBUTION_TOP_SCORES, sketchRefinedCount } from "../indexer/query-limits.js";
import type { QuantizedVectorFile, StoredVectors, VectorFile } from "../indexer/vector-file.js";
import { type RowQuery, type RowScorer, layerScoresOfRows, localScorer, rangesQuery, rowQuery, scoreAllRows, scoreRows } from "../indexer/row-scores.js";
import { type PendingScan, beginScan } from "../indexer/scan-search.js";
import { ScoringHelper } from "../indexer/scoring-helper.js";
import { type CoordinateMove, maskQuery, moveCoordinates, rangesForLayers } from "../projection/vector-layout.js";
import { type OpenedModel, openModel } from "../model/open-model.js";
import type { HostTensor } from "../runtime/kernels.js";
import type { RuntimeOptions } from "../runtime/session.js";
import { Projector } from "../projection/projector.js";
import { type CoarseSketch, coarseSketch } from "../projection/sketch.js";
import { fitPowerLaw, histogram, topShare } from "../stats/power-law.js";
import type { Tokenizer } from "../tokenizer/tokenizer.js";
import { ordinaryMemory } from "../util/allocate.js";
import { InputError } from "../util/errors.js";
import { candidateCount, ordinalsToScore, rankHits } from "./hits.js";
import type {
  Candidate,
  CandidateSet,
  ComparedSequence,
  DistributionRequest,
  DistributionResult,
  ExactScore,
  IndexInfo,
  InfluenceEngine,
  InfluenceRequest,
  InfluenceResult,
  LayerScore,
  QueryInfo,
  QueryTokens,
  ScoringRequest,
  SequenceScore,
  SequenceScoresRequest,
  SequenceScoresResult,
  TokenScore,
} from "./types.js";
import { type IndexArrays, type TierArrays, checkIndexModel, openIndexArrays } from "./index-arrays.js";
import { byScore, rankBySketch } from "./sketch-ranking.js";
import { scoreWithVariants } from "./what-if.js";
import { wordOrderVariants } from "./word-order-variants.js";

interface PreparedQuery {
  info: QueryInfo;
  /** Projected query vector (all layers). */
  vector: Float32Array;
  /** The query's sketch, restricted to the chosen layers; undefined when the index has no sketch. */
  sketch?: Float32Array;
  /** Preconditioned query gradient per module; undefined outside the chosen layers. */
  modules: Array<ModuleQueries | undefined>;
  layers: number[];
  /** Whether layers is a proper subset of the model's layers. */
  restricted: boolean;
  /** The first tier's scan, begun before the sketch's projection (prepare's `scanAmong`). */
  scan?: PendingScan;
}

export interface EngineOptions {
  /**
   * Whether a core is idle now (busy-engines.ts), for the scoring helper: asked before each pass over many rows.
   * Without it, always: an engine opened on its own has the machine to itself.
   */
  spareCore?: () => boolean;
}

/**
 * How the first tier finds a query's candidates: a scan of its rows in int8 (an index small enough,
 * indexer/scan-search.ts), or its HNSW graphs, which are read only then.
 */
type FirstTierSearch = { kind: "scan"; copy: QuantizedVectorFile } | { kind: "hnsw"; graphs: IndexSet };

/** One tier of the index: its projector and its vector file. */
interface Tier<Rows extends StoredVectors = StoredVectors> {
  projector: Projector;
  rows: Rows;
}

const tierOf = <Rows extends StoredVectors>({ projection, rows }: TierArrays<Rows>): Tier<Rows> => ({ projector: new Projector(projection), rows });

/** The second tier, with the coarse sketch inside it that a query's first pass scores by (if it is large enough to have one). */
interface SketchTier extends Tier {
  coarse?: CoarseSketch;
  /** How a query's sketch goes from the projection's layout to the file's (its coarse part first, since it was stored so). */
  moves: CoordinateMove[];
}

export class IndexEngine implements InfluenceEngine {
  /** Transformer blocks with tracked matrices, ascending. */
  private readonly layers: number[];

  private constructor(
    private readonly dir: string,
    private readonly manifest: IndexManifest,
    private readonly opened: OpenedModel,
    private readonly factors: ModuleFactors[],
    /** 1 / (Lambda + damping) per module. */
    private readonly inverses: HostTensor[],
    private readonly projector: Projector,
    private readonly vectors: VectorFile,
    private readonly firstTier: FirstTierSearch,
    private readonly store: TokenStore,
    /** A second thread for the products with many rows (scan, sketch passes, distributions); absent when the rows are not shared. */
    private readonly helper: ScoringHelper | undefined,
    /** Whether a core is idle for the helper now. */
    private readonly spareCore: () => boolean,
    /** The second tier, when the index has one. */
    private readonly sketch?: SketchTier,
  ) {
    this.layers = [...new Set(vectors.layout.blocks.map((b) => b.layer))].sort((a, b) => a - b);
  }

  /**
   * Opens and checks every file of an index folder; a mismatch is refused naming the file. The
   * large read-only arrays are read here (openIndexArrays: the factors into ordinary memory, the
   * rows into shared memory, which the scoring helper thread reads too), unless `arrays` gives them
   * already read from this folder: `influence serve`'s workers share one copy.
   */
  static async open(indexDir: string, runtime: RuntimeOptions = {}, arrays?: IndexArrays, options: EngineOptions = {}): Promise<IndexEngine> {
    const dir = path.resolve(indexDir);
    const manifest = await readIndexManifest(dir);
    const opened = await openModel(manifest.model.path, runtime);
    checkIndexModel(dir, manifest, opened.fingerprint);
    const { factors, inverses, scan, ...tiers } = arrays ?? (await openIndexArrays(dir, manifest, opened.model.modules, ordinaryMemory));
    const { projector, rows: vectors } = tierOf(tiers.vectors);
    // Started now, ready by the end of opening.
    const helperStarting = ScoringHelper.start([vectors, ...(scan ? [scan] : []), ...(tiers.sketch ? [tiers.sketch.rows] : [])]);
    const firstTier: FirstTierSearch = scan
      ? { kind: "scan", copy: scan }
      : {
          kind: "hnsw",
          graphs: await openIndexSet(indexPath(dir, "hnsw"), { expectDim: vectors.dim, expectVectorsChecksum: vectors.checksum, layout: vectors.layout }),
        };
    const store = await readTokenStore(indexPath(dir, "tokens"));
    if (store.count !== vectors.count) throw new InputError(`${indexPath(dir, "tokens")}: holds ${store.count} sequences, the vectors ${vectors.count}`);
    const sketch = tiers.sketch && { ...tierOf(tiers.sketch), coarse: coarseSketch(tiers.sketch.rows.layout), moves: tiers.sketch.moves };
    const helper = await helperStarting;
    return new IndexEngine(dir, manifest, opened, factors, inverses, projector, vectors, firstTier, store, helper, options.spareCore ?? (() => true), sketch);
  }

  info(): IndexInfo {
    const { manifest, opened } = this;
    const cfg = opened.model.config;
    const blocks = this.vectors.layout.blocks;
    const settings = manifest.parameters.projection;
    return {
      model: {
        path: manifest.model.path,
        fingerprint: manifest.model.fingerprint,
        architecture: cfg.architecture,
        layers: cfg.nLayer,
        embedding: cfg.nEmbd,
        vocabSize: cfg.vocabSize,
        contextLength: cfg.contextLength,
      },
      corpus: { ...manifest.corpus },
      dims: { kOut: settings.kOut, kIn: settings.kIn, total: this.vectors.dim },
      layers: [...this.layers],
      modules: blocks.map((b, i) => ({ name: b.name, layer: b.layer, damping: this.factors[i].damping, offset: b.offset, size: b.size })),
      fisher: manifest.parameters.fisher,
      build: {
        id: manifest.build.id,
        startedAt: manifest.build.startedAt,
        finishedAt: manifest.build.finishedAt,
        seconds: manifest.build.seconds,
        projectionSeed: settings.seed,
      },
    };
  }

  /**
   * Query gradient, projected vector and (for exact scoring) the preconditioned query gradient of
   * every module in the chosen layers. With `scanAmong`, on an index whose first tier is scanned, the
   * scan (among those ordinals, or all) begins as soon as the first tier's vector is known, so that
   * the scoring helper scans while this thread projects the sketch; search() finishes it.
   */
  private async prepare(query: QueryTokens, exactScoring: boolean, scanAmong?: { allowedOrdinals?: readonly number[] }): Promise<PreparedQuery> {
    const { model, tokenizer } = this.opened;
    const layers = query.layers ?? this.layers;
    // The model's own requirement, which argument checks leave to it: a token before the first measured one.
    if (query.promptTokens.length === 0) throw new InputError("the prompt is empty: the first completion token needs at least one token before it");
    const { promptTokens, completionTokens } = query;
    const capture = await model.capture([[...promptTokens, ...completionTokens]], {
      kind: "completion",
      promptLengths: [promptTokens.length],
      positions: [query.completionPositions],
    });
    const vector = await this.projector.vectors(capture);
    const restricted = layers.length < this.layers.length;
    const scan = scanAmong && this.firstTier.kind === "scan" ? this.scanOf(this.firstTier.copy, vector, layers, scanAmong.allowedOrdinals) : undefined;
    try {
      let sketch: Float32Array | undefined;
      if (this.sketch) {
        const full = await this.sketch.projector.vectors(capture);
        moveCoordinates(full, this.sketch.rows.dim, this.sketch.moves);
        sketch = restricted ? maskQuery(full, rangesForLayers(this.sketch.rows.layout, layers)) : full;
      }
      const modules: Array<ModuleQueries | undefined> = [];
      for (const [m, module] of model.modules.entries()) {
        if (!exactScoring || !layers.includes(module.layer)) {
          modules.push(undefined);
          continue;
        }
        const [preconditioned] = await preconditionedGradients(capture, this.factors[m], this.inverses[m], m);
        modules.push(denseModuleQueries(module, [preconditioned]));
      }
      const tokens = [...promptTokens, ...completionTokens];
      return {
        info: { promptTokens, completionTokens, tokenTexts: tokens.map((t) => tokenizer.tokenText(t)), loss: capture.losses[0] },
        vector,
        ...(sketch ? { sketch } : {}),
        modules,
        layers,
        restricted,
        ...(scan ? { scan } : {}),
      };
    } catch (err) {
      // The helper holds the scan until it is finished: finished here, it takes the next query's.
      scan?.topK(0);
      throw err;
    }
  }

  /**
   * The exact score of one token sequence against a prepared query: total, per layer and per
   * token. One sequence per pass: ONNX Runtime's backward pass rounds a sequence's gradients
   * differently in batches of other sizes and paddings (float32 roundings, about 1e-7 relative),
   * and a sequence must score the same whichever worker, and so whichever batch, it is dealt to.
   */
  private async scoreTokens(prepared: PreparedQuery, tokens: number[]): Promise<{ score: number; layerScores: LayerScore[]; tokenScores: Float64Array }> {
    const modules = this.opened.model.modules;
    const capture = await this.opened.model.capture([tokens], { kind: "next-token" });
    const scored = await scoreCapture(capture, prepared.modules, 1);
    const layerScores = new Map<number, number>(prepared.layers.map((l) => [l, 0]));
    scored.moduleScores.forEach((perModule, m) => {
      if (prepared.modules[m]) layerScores.set(modules[m].layer, (layerScores.get(modules[m].layer) ?? 0) + perModule[0][0]);
    });
    return { score: scored.scores[0][0], layerScores: [...layerScores].map(([layer, score]) => ({ layer, score })), tokenScores: scored.tokenScores[0][0] };
  }

  /** Exact scores of indexed sequences against a prepared query: totals, per layer and (if asked) per token. */
  private async scoreExactly(prepared: PreparedQuery, ordinals: readonly number[], withTokens: boolean): Promise<ExactScore[]> {
    const results: ExactScore[] = [];
    for (const ordinal of ordinals) {
      const tokens = Array.from(this.store.tokens(ordinal));
      const { score, layerScores, tokenScores } = await this.scoreTokens(prepared, tokens);
      results.push({ ordinal, score, layerScores, ...(withTokens ? { tokenScores: this.tokenScores(tokens, tokenScores) } : {}) });
    }
    return results;
  }

  private tokenScores(tokens: readonly number[], scores: Float64Array): TokenScore[] {
    return Array.from(scores, (score, position) => ({ position, tokenId: tokens[position], text: this.opened.tokenizer.tokenText(tokens[position]), score }));
  }

  /**
   * The `count` best sequences by projected score: from a scan of the int8 rows or HNSW (whichever
   * the index was opened with), or (exact) from every stored vector in float64.
   */
  private search(prepared: PreparedQuery, count: number, allowedOrdinals: readonly number[] | undefined, exact: boolean): SearchHits {
    const k = Math.min(count, this.vectors.count);
    const allowed = allowedOrdinals ? new Set(allowedOrdinals) : undefined;
    const filter = allowed ? (label: number) => allowed.has(label) : undefined;
    if (exact) {
      const query = prepared.restricted ? maskQuery(prepared.vector, rangesForLayers(this.vectors.layout, prepared.layers)) : prepared.vector;
      return exactTopK(this.vectors.rows, this.vectors.dim, query, k, { filter, firstOrdinal: this.vectors.firstOrdinal });
    }
    if (this.firstTier.kind === "scan") return (prepared.scan ?? this.scanOf(this.firstTier.copy, prepared.vector, prepared.layers, allowedOrdinals)).topK(k);
    const { graphs } = this.firstTier;
    return graphs.search(prepared.vector, k, {
      ef: Math.max(k, graphs.full.ef),
      ...(prepared.restricted ? { layers: prepared.layers } : {}),
      ...(filter ? { filter } : {}),
    });
  }

  /** The scan of the first tier's int8 copy for a query's vector over `layers`, begun. */
  private scanOf(copy: QuantizedVectorFile, vector: Float32Array, layers: readonly number[], allowedOrdinals: readonly number[] | undefined): PendingScan {
    return beginScan(copy, vector, rangesForLayers(copy.layout, layers), allowedOrdinals, this.scorer);
  }

  /** Top k by projected score alone, searched (a scan of the int8 rows, or HNSW) or exact: for measuring the search's recall. */
  async approximateTopK(request: QueryTokens & { allowedOrdinals?: number[] }, k: number, exact: boolean): Promise<SearchHits> {
    const prepared = await this.prepare(request, false);
    return this.search(prepared, k, request.allowedOrdinals, exact);
  }

  /**
   * The search's candidates, best first by the index's finest score (the sketch's, if it has one),
   * the best topK with that score by layer.
   */
  private async candidatesOf(prepared: PreparedQuery, request: InfluenceRequest): Promise<Candidate[]> {
    const found = this.search(prepared, candidateCount(request, this.sketch !== undefined), request.allowedOrdinals, false);
    // With a sketch, it ranks the candidates (a coarse pass, then the best by the whole sketch); without, the first tier's float32 rows
    // do (the search's own scores may be a scan's int8 ones).
    let scorer: RowQuery;
    let ranked: Array<Omit<Candidate, "approxLayerScores">>;
    if (this.sketch && prepared.sketch) {
      scorer = rowQuery(this.sketch.rows, prepared.sketch, this.scorer);
      const scored = rankBySketch(scorer, this.sketch.coarse, found.labels, sketchRefinedCount(request.topK));
      ranked = scored.map(({ ordinal, score }) => ({ ordinal, approxScore: score, tier: "sketch" as const }));
    } else {
      scorer = rowQuery(this.vectors, prepared.vector, this.scorer);
      const overLayers = rangesQuery(scorer, rangesForLayers(this.vectors.layout, prepared.layers));
      ranked = byScore(found.labels, scoreRows(overLayers, found.labels)).map(({ ordinal, score }) => ({
        ordinal,
        approxScore: score,
        tier: "projected" as const,
      }));
    }
    const hits = ranked.slice(0, request.topK).map((c) => c.ordinal);
    const layerScores = layerScoresOfRows(scorer, hits, prepared.layers);
    return ranked.map((c, i) => (i < hits.length ? { ...c, approxLayerScores: prepared.layers.map((layer, l) => ({ layer, score: layerScores[i][l] })) } : c));
  }

  async influence(request: InfluenceRequest): Promise<InfluenceResult> {
    const t0 = performance.now();
    const prepared = await this.prepare(request, request.rerank || request.tokenScores, request);
    const t1 = performance.now();
    const candidates = await this.candidatesOf(prepared, request);
    const t2 = performance.now();
    const exact = await this.scoreExactly(prepared, ordinalsToScore(request, candidates), request.tokenScores);
    const hits = rankHits(request, candidates, exact);
    const t3 = performance.now();
    return { query: prepared.info, hits, timings: { gradientMs: t1 - t0, searchMs: t2 - t1, rerankMs: t3 - t2, totalMs: t3 - t0 } };
  }

  async candidates(request: InfluenceRequest): Promise<CandidateSet> {
    const t0 = performance.now();
    const prepared = await this.prepare(request, false, request);
    const t1 = performance.now();
    const candidates = await this.candidatesOf(prepared, request);
    return { query: prepared.info, candidates, gradientMs: t1 - t0, searchMs: performance.now() - t1 };
  }

  async exactScores(request: ScoringRequest, ordinals: number[]): Promise<ExactScore[]> {
    const { firstOrdinal, count } = this.vectors;
    const unknown = ordinals.filter((o) => !Number.isInteger(o) || o < firstOrdinal || o >= firstOrdinal + count);
    if (unknown.length)
      throw new InputError(`no indexed sequence at ordinal(s) ${unknown.slice(0, 5).join(", ")}: the index holds ${firstOrdinal}..${firstOrdinal + count - 1}`);
    const prepared = await this.prepare(request, true);
    return this.scoreExactly(prepared, ordinals, request.tokenScores);
  }

  async comparedSequence(request: QueryTokens, ordinal: number, variants: boolean): Promise<ComparedSequence> {
    const [original] = await this.exactScores({ ...request, tokenScores: true }, [ordinal]);
    const { bosTokenId } = this.opened.tokenizer;
    return { original, variants: variants && original.tokenScores ? wordOrderVariants(original.tokenScores, bosTokenId) : [] };
  }

  async sequenceScores(request: QueryTokens, sequences: number[][]): Promise<{ query: QueryInfo; scores: SequenceScore[] }> {
    const prepared = await this.prepare(request, true);
    const scores: SequenceScore[] = [];
    for (const tokens of sequences) {
      const { score, layerScores, tokenScores } = await this.scoreTokens(prepared, tokens);
      scores.push({ tokens, text: this.opened.tokenizer.decode(tokens), score, layerScores, tokenScores: this.tokenScores(tokens, tokenScores) });
    }
    return { query: prepared.info, scores };
  }

  scoreSequences(request: SequenceScoresRequest): Promise<SequenceScoresResult> {
    return scoreWithVariants(this, request);
  }

  /**
   * Every indexed sequence's score by one of the index's tiers, in ordinal order (entry 0 is the
   * first ordinal): the sketch's (the default, when the index has one) or the projected vectors'.
   */
  async approximateScores(
    request: QueryTokens,
    tier: "sketch" | "projected" = this.sketch ? "sketch" : "projected",
  ): Promise<{ query: QueryInfo; scores: Float32Array }> {
    const prepared = await this.prepare(request, false);
    if (tier === "sketch") {
      if (!this.sketch || !prepared.sketch) throw new InputError(`${this.dir} has no sketch (it was built with --sketch-floats 0, or before sketches)`);
      return { query: prepared.info, scores: scoreAllRows(rowQuery(this.sketch.rows, prepared.sketch, this.scorer)) };
    }
    return {
      query: prepared.info,
      scores: scoreAllRows(rowQuery(this.vectors, maskQuery(prepared.vector, rangesForLayers(this.vectors.layout, prepared.layers)), this.scorer)),
    };
  }

  /** The distribution of the index's finest scores over every sequence (the sketch's: unbiased, on the exact scores' scale). */
  async distribution(request: DistributionRequest): Promise<DistributionResult> {
    const { query, scores } = await this.approximateScores(request);
    const { count } = this.vectors;
    const positive = Array.from(scores)
      .filter((s) => s > 0)
      .sort((a, b) => b - a);
    const fit = fitPowerLaw(positive);
    return {
      query,
      count,
      histogram: histogram(scores, request.bins),
      topScores: positive.slice(0, DISTRIBUTION_TOP_SCORES),
      powerLaw: fit,
      topPercentShare: topShare(scores, 0.01),
    };
  }

  async close(): Promise<void> {
    await this.helper?.close();
    await this.opened.model.release();
  }

  /** Who scores many rows: this thread and the helper while a core is idle, else this thread alone. */
  private get scorer(): RowScorer {
    return this.helper && this.spareCore() ? this.helper : localScorer;
  }

  /** The folder this engine serves. */
  get folder(): string {
    return this.dir;
  }

  /** The model's tokenizer, for checking text queries before they come here (query-validation.ts). */
  get tokenizer(): Tokenizer {
    return this.opened.tokenizer;
  }
}
