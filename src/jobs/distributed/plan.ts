/**
 * A distributed build's plan and its stages. A stage's jobs are independent of each other and
 * queued together; the next stage is queued when the last job of a stage is done (queue.ts). Every
 * splittable phase is split: the covariance and Lambda passes by corpus shard and the PCA pass by
 * shard of its sample (their sums merged in shard order by one job), one eigendecomposition per
 * module, one vectors job per shard, one HNSW job per graph.
 */
import type { BuildParameters } from "../../indexer/index-manifest.js";
import type { OrdinalRange } from "../../indexer/index-worker.js";
import { ordinalRanges, sampleShards } from "../../indexer/parallel-passes.js";
import type { TrackedModule } from "../../model/model.js";
import { padded } from "../artifacts.js";
import { type Graph, evenSample, graphName, indexGraphs } from "../build-steps.js";

export const PLAN_VERSION = 1;

/** What every worker needs to know of a build, stored with it in the database. */
export interface DistributedPlan {
  version: typeof PLAN_VERSION;
  /** The shared folder as the planner sees it (a worker may mount it elsewhere). */
  outDir: string;
  model: { dir: string; fingerprint: string; modules: TrackedModule[] };
  corpus: { name: string; path: string; fingerprint: string };
  /** The corpus as the factors manifest records it (its first fitSequences when those are fewer). */
  fitSource: { path: string; fingerprint: string; maxSequences: number | null };
  parameters: BuildParameters;
  counts: { sequences: number; tokens: number };
  /** Sequences of the EK-FAC fit. */
  fitCount: number;
  batchTokens: number;
  /** Redacted URL of the database, for the manifest. */
  databaseUrl: string;
  queue: QueueSettings;
}

export interface QueueSettings {
  /** A job running longer is taken for lost (its worker died) and given to another worker. */
  jobTimeoutSeconds: number;
  /** Retries of a failing or lost job before the build fails. */
  retries: number;
}

/** What one job does. */
export type JobSpec =
  | ({ kind: "covariance" | "lambda" | "vectors"; shard: number } & OrdinalRange)
  | { kind: "pca"; shard: number; ordinals: number[] }
  | { kind: "covariance-merge" | "lambda-merge" | "projection" | "merge-vectors" | "finish" }
  | { kind: "eigen"; module: number }
  | { kind: "hnsw"; graph: Graph };

/** Phase of the build a job belongs to, as `influence build` names them. */
export const phaseOf = (spec: JobSpec): string =>
  ({
    covariance: "factors",
    "covariance-merge": "factors",
    eigen: "factors",
    lambda: "factors",
    "lambda-merge": "factors",
    pca: "projection",
    projection: "projection",
    vectors: "vectors",
    "merge-vectors": "hnsw",
    hnsw: "hnsw",
    finish: "manifest",
  })[spec.kind];

/** The job's name: unique in its build, and the name of the artifact it writes. */
export function jobName(spec: JobSpec): string {
  switch (spec.kind) {
    case "covariance":
    case "lambda":
    case "vectors":
    case "pca":
      return `${spec.kind}-${padded(spec.shard)}`;
    case "eigen":
      return `eigen-${padded(spec.module)}`;
    case "hnsw":
      return `hnsw-${graphName(spec.graph)}`;
    default:
      return spec.kind;
  }
}

const fitShards = (plan: DistributedPlan) => ordinalRanges(plan.fitCount, plan.parameters.shardSize);

/** The build's stages in order; each gives its jobs when the stages before it are done. */
export const STAGES: ReadonlyArray<(plan: DistributedPlan, outDir: string) => JobSpec[] | Promise<JobSpec[]>> = [
  (plan) => fitShards(plan).map((r, shard) => ({ kind: "covariance", shard, ...r })),
  () => [{ kind: "covariance-merge" }],
  (plan) => plan.model.modules.map((_, module) => ({ kind: "eigen", module })),
  (plan) => fitShards(plan).map((r, shard) => ({ kind: "lambda", shard, ...r })),
  () => [{ kind: "lambda-merge" }],
  // No sample with a random basis: the stage has no jobs and is passed over.
  (plan) =>
    plan.parameters.projection.basis === "pca"
      ? sampleShards(evenSample(plan.counts.sequences, plan.parameters.pcaSequences), plan.parameters.shardSize).map((ordinals, shard) => ({
          kind: "pca",
          shard,
          ordinals,
        }))
      : [],
  () => [{ kind: "projection" }],
  (plan) => ordinalRanges(plan.counts.sequences, plan.parameters.shardSize).map((r, shard) => ({ kind: "vectors", shard, ...r })),
  () => [{ kind: "merge-vectors" }],
  async (_, outDir) => (await indexGraphs(outDir)).map((graph) => ({ kind: "hnsw", graph })),
  () => [{ kind: "finish" }],
];
