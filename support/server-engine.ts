/**
 * TEST DOUBLE of the influence engine, for the server's plumbing tests only: deterministic, made-up
 * scores over `sequences` ordinals, no model and no index. It records the requests it receives so
 * that tests can check what the server asked for. The real engine has its own end-to-end tests.
 */
import { candidateCount, stagedInfluence } from "../src/engine/hits.js";
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
} from "../src/engine/types.js";
import { scoreWithVariants } from "../src/engine/what-if.js";

/** The name the server tests serve the double under. */
export const TEST_INDEX = "test-index";

/** The corpus the double claims to index; the test database must hold it under this name. */
export const TEST_CORPUS = { name: "server-test-corpus", fingerprint: "sha256:server-test-corpus", path: "/data/server-test.jsonl" };
export const TEST_LAYERS = [0, 1];
export const TEST_CONTEXT_LENGTH = 64;

export interface TestDoubleOptions {
  /** Ordinals 0..sequences-1 exist. */
  sequences: number;
  /** Keeps its thread's CPU busy this long per call (in a worker: a heavy query). */
  busyMs?: number;
}

export class TestDoubleEngine implements InfluenceEngine {
  readonly influenceRequests: InfluenceRequest[] = [];
  readonly distributionRequests: DistributionRequest[] = [];
  readonly sequenceScoresRequests: SequenceScoresRequest[] = [];
  /** Thrown by the next influence call. */
  failNext: Error | undefined;

  constructor(private readonly options: TestDoubleOptions) {}

  info(): IndexInfo {
    const modules = TEST_LAYERS.flatMap((layer, i) => [
      { name: `transformer.h.${layer}.mlp.c_fc`, layer, damping: 0.01 * (i + 1), offset: 2 * i * 64, size: 64 },
      { name: `transformer.h.${layer}.mlp.c_proj`, layer, damping: 0.02 * (i + 1), offset: (2 * i + 1) * 64, size: 64 },
    ]);
    return {
      model: {
        path: "/models/test-double",
        fingerprint: "sha256:model",
        architecture: "gpt2",
        layers: TEST_LAYERS.length,
        embedding: 32,
        vocabSize: 50257,
        contextLength: TEST_CONTEXT_LENGTH,
      },
      corpus: { ...TEST_CORPUS, sequences: this.options.sequences, tokens: this.options.sequences * 10 },
      dims: { kOut: 8, kIn: 8, total: modules.length * 64 },
      layers: TEST_LAYERS,
      modules,
      fisher: "empirical",
      build: { id: 1, startedAt: "2025-01-02T03:04:05.000Z", finishedAt: "2025-01-02T03:05:05.000Z", seconds: 60, projectionSeed: 3_000_000_000 },
    };
  }

  /** Both stages through the engine's own ranking (hits.ts), with fixed timings. */
  async influence(request: InfluenceRequest): Promise<InfluenceResult> {
    this.influenceRequests.push(structuredClone(request));
    const result = await stagedInfluence(this, request);
    return { ...result, timings: { gradientMs: 1, searchMs: 2, rerankMs: request.rerank ? 3 : 0, totalMs: 6 } };
  }

  /** The best candidates by made-up score; their projected score is 0.9 times it. */
  async candidates(request: InfluenceRequest): Promise<CandidateSet> {
    this.#spin();
    const failure = this.failNext;
    this.failNext = undefined;
    if (failure) throw failure;
    const pool = request.allowedOrdinals ?? Array.from({ length: this.options.sequences }, (_, i) => i);
    const ranked = [...pool].sort((a, b) => madeUpScore(b) - madeUpScore(a) || a - b).slice(0, candidateCount(request, false));
    return {
      query: this.#query(request),
      candidates: ranked.map((ordinal) => ({
        ordinal,
        approxScore: 0.9 * madeUpScore(ordinal),
        tier: "projected" as const,
        approxLayerScores: this.#layerScores(request, 0.9 * madeUpScore(ordinal)),
      })),
      gradientMs: 1,
      searchMs: 2,
    };
  }

  /** Each token scores 0.01 times its id: a sequence's score is its ids' sum over 100. */
  async sequenceScores(request: QueryTokens, sequences: number[][]): Promise<{ query: QueryInfo; scores: SequenceScore[] }> {
    return {
      query: this.#query(request),
      scores: sequences.map((tokens) => {
        const tokenScores = tokens.map((tokenId, position) => ({ position, tokenId, text: `<${tokenId}>`, score: tokenId / 100 }));
        const score = tokenScores.reduce((sum, t) => sum + t.score, 0);
        return { tokens, text: tokenScores.map((t) => t.text).join(""), score, layerScores: this.#layerScores(request, score), tokenScores };
      }),
    };
  }

  /** The compared sequence's made-up score; the double stores no tokens, so it makes no variants. */
  async comparedSequence(request: QueryTokens, ordinal: number): Promise<ComparedSequence> {
    const [original] = await this.exactScores({ ...request, tokenScores: true }, [ordinal]);
    return { original, variants: [] };
  }

  async scoreSequences(request: SequenceScoresRequest): Promise<SequenceScoresResult> {
    this.sequenceScoresRequests.push(structuredClone(request));
    return scoreWithVariants(this, request);
  }

  async exactScores(request: ScoringRequest, ordinals: number[]): Promise<ExactScore[]> {
    return ordinals.map((ordinal) => {
      const score = madeUpScore(ordinal);
      return {
        ordinal,
        score,
        layerScores: this.#layerScores(request, score),
        ...(request.tokenScores && { tokenScores: [{ position: 0, tokenId: 464, text: "The", score }] }),
      };
    });
  }

  #layerScores(request: QueryTokens, score: number) {
    const layers = request.layers ?? TEST_LAYERS;
    return layers.map((layer) => ({ layer, score: score / layers.length }));
  }

  async distribution(request: DistributionRequest): Promise<DistributionResult> {
    this.distributionRequests.push(structuredClone(request));
    this.#spin();
    const bins = request.bins;
    return {
      query: this.#query(request),
      count: this.options.sequences,
      histogram: Array.from({ length: bins }, (_, i) => ({ lower: i / bins, upper: (i + 1) / bins, count: i === 0 ? this.options.sequences : 0 })),
      topScores: [0.5, 0.25, 0.125],
      powerLaw: { alpha: 2.5, xMin: 0.1, ksDistance: 0.05, tailCount: 12 },
      topPercentShare: 0.125,
    };
  }

  async close(): Promise<void> {}

  #query(request: QueryTokens): QueryInfo {
    if (!request.completionTokens) throw new Error("the test double takes queries as token ids");
    const promptTokens = request.promptTokens ?? [];
    return {
      promptTokens,
      completionTokens: request.completionTokens,
      tokenTexts: [...promptTokens, ...request.completionTokens].map((id) => `<${id}>`),
      loss: 1.25,
    };
  }

  #spin(): void {
    const until = performance.now() + (this.options.busyMs ?? 0);
    while (performance.now() < until) {
      // Busy on purpose: a CPU-bound query holds its thread.
    }
  }
}

/** Scattered over ordinals, so that hits are not in ordinal order. */
function madeUpScore(ordinal: number): number {
  return ((ordinal * 37) % 101) / 100;
}
