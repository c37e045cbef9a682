/**
 * One job of a distributed build, run by a worker process: the same steps as the single-machine
 * build (build-steps.ts, parallel-passes.ts, the index workers), with what a job hands to later jobs
 * written to the artifact store under its name.
 */
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { type Database, type BuildJobRow, listBuildJobs, recordBuildPhase } from "../../db/index.js";
import { loadFactors } from "../../ekfac/artifacts.js";
import { CovarianceAccumulator, type ModuleCovariance } from "../../ekfac/covariance.js";
import { eigenbasis, type ModuleEigenbasis } from "../../ekfac/eigenbasis.js";
import type { ModuleFactors } from "../../ekfac/factors.js";
import { type FisherPass, lambdaDamping } from "../../ekfac/fit.js";
import { LambdaAccumulator } from "../../ekfac/lambda.js";
import type { PartialSums } from "../../ekfac/partial-sums.js";
import { indexPath } from "../../indexer/index-manifest.js";
import type { OrdinalRange } from "../../indexer/index-worker.js";
import { fisherChunks, momentChunks, ordinalRanges, shardSums } from "../../indexer/parallel-passes.js";
import type { TokenStore } from "../../indexer/token-store.js";
import type { TrackedModule } from "../../model/model.js";
import { WhitenedMomentAccumulator } from "../../projection/pca.js";
import type { WorkerPool } from "../../workers/worker-pool.js";
import { buildGraph, completeIndex, mergeShardVectors, saveBuildFactors, saveProjections, shardJob } from "../build-steps.js";
import {
  type ArtifactStore,
  padded,
  readCovariance,
  readEigenbasis,
  readPartialSums,
  writeCovariance,
  writeEigenbasis,
  writePartialSums,
} from "../artifacts.js";
import { type DistributedPlan, type JobSpec, jobName, phaseOf } from "./plan.js";

/** A worker's view of one build. */
export interface BuildContext {
  buildId: number;
  plan: DistributedPlan;
  /** The shared folder as this machine mounts it. */
  outDir: string;
  modules: readonly TrackedModule[];
  artifacts: ArtifactStore;
  /** Index workers (model and token store loaded) for the gradient passes. */
  pool: WorkerPool;
  store: TokenStore;
  db: Database;
}

/** Sequences and tokens a job covered, for throughput. */
export interface Covered {
  sequences: number;
  tokens: number;
}

/** The folder of the job artifacts inside the shared folder. */
export const artifactsDir = (outDir: string): string => path.join(outDir, "jobs");

/** The merged covariance of module `m`, written by the covariance merge for its eigendecomposition job. */
const covarianceArtifact = (m: number): string => `covariance-module-${padded(m)}`;

function rangeCovered(store: TokenStore, { firstOrdinal, lastOrdinal }: OrdinalRange): Covered {
  let tokens = 0;
  for (let o = firstOrdinal; o <= lastOrdinal; o++) tokens += store.tokens(o).length;
  return { sequences: lastOrdinal - firstOrdinal + 1, tokens };
}

/** Partial sums of the shards of a stage, read and merged in shard order. */
async function mergeShards(ctx: BuildContext, kind: "covariance" | "lambda" | "pca", merge: (p: PartialSums) => void): Promise<void> {
  const shards = (await listBuildJobs(ctx.db, ctx.buildId)).filter((j) => (j.spec as JobSpec).kind === kind);
  shards.sort((a, b) => (a.spec as { shard: number }).shard - (b.spec as { shard: number }).shard);
  for (const job of shards) merge(await readPartialSums(ctx.artifacts, job.name));
}

const eigenbases = (ctx: BuildContext): Promise<ModuleEigenbasis[]> =>
  Promise.all(ctx.modules.map((_, m) => readEigenbasis(ctx.artifacts, jobName({ kind: "eigen", module: m }))));

const covariances = (ctx: BuildContext): Promise<ModuleCovariance[]> =>
  Promise.all(ctx.modules.map((module, m) => readCovariance(ctx.artifacts, covarianceArtifact(m), module)));

const buildFactors = async (ctx: BuildContext): Promise<ModuleFactors[]> =>
  (await loadFactors(indexPath(ctx.outDir, "factors"), { modelFingerprint: ctx.plan.model.fingerprint, modules: ctx.modules })).factors;

/** Wall-clock seconds from the first start to the last finish of the jobs of these kinds. */
function spanSeconds(jobs: readonly BuildJobRow[], kinds: readonly string[]): number {
  const of = jobs.filter((j) => kinds.includes((j.spec as JobSpec).kind) && j.startedAt && j.finishedAt);
  if (of.length === 0) return 0;
  const start = Math.min(...of.map((j) => (j.startedAt as Date).getTime()));
  const end = Math.max(...of.map((j) => (j.finishedAt as Date).getTime()));
  return (end - start) / 1000;
}

async function fisherShard(ctx: BuildContext, spec: OrdinalRange, pass: FisherPass, name: string): Promise<Covered> {
  const settings = { fisher: ctx.plan.parameters.fisher, seed: ctx.plan.parameters.seed };
  await writePartialSums(ctx.artifacts, name, await shardSums(ctx.pool, fisherChunks(spec, settings, pass)));
  return rangeCovered(ctx.store, spec);
}

const NOTHING: Covered = { sequences: 0, tokens: 0 };

/** Runs one job; its outputs are complete (written atomically) when this resolves. */
export async function runJob(ctx: BuildContext, spec: JobSpec): Promise<Covered> {
  const { plan, outDir } = ctx;
  const p = plan.parameters;
  const name = jobName(spec);
  switch (spec.kind) {
    case "covariance":
      return fisherShard(ctx, spec, { kind: "covariance" }, name);
    case "covariance-merge": {
      const sums = new CovarianceAccumulator(ctx.modules);
      await mergeShards(ctx, "covariance", (partial) => sums.merge(partial));
      const covariance = sums.finish();
      for (const [m, cov] of covariance.entries()) await writeCovariance(ctx.artifacts, covarianceArtifact(m), cov);
      return NOTHING;
    }
    case "eigen": {
      const cov = await readCovariance(ctx.artifacts, covarianceArtifact(spec.module), ctx.modules[spec.module]);
      await writeEigenbasis(ctx.artifacts, name, await eigenbasis(cov));
      return NOTHING;
    }
    case "lambda":
      return fisherShard(ctx, spec, { kind: "lambda", eigen: await eigenbases(ctx) }, name);
    case "lambda-merge": {
      const sums = new LambdaAccumulator(ctx.modules, await eigenbases(ctx));
      await mergeShards(ctx, "lambda", (partial) => sums.merge(partial));
      const factors = sums.finish(lambdaDamping(p.damping));
      const jobs = await listBuildJobs(ctx.db, ctx.buildId);
      const tokens = jobs.filter((j) => (j.spec as JobSpec).kind === "covariance").reduce((s, j) => s + j.tokens, 0);
      const timings = {
        covarianceSeconds: spanSeconds(jobs, ["covariance", "covariance-merge"]),
        eigendecompositionSeconds: spanSeconds(jobs, ["eigen"]),
        lambdaSeconds: spanSeconds(jobs, ["lambda"]),
      };
      const result = { covariance: await covariances(ctx), factors, sequences: plan.fitCount, tokens, timings };
      await saveBuildFactors(outDir, plan.model, plan.fitSource, p, plan.fitSource.maxSequences ?? undefined, result);
      return NOTHING;
    }
    case "pca": {
      const chunks = momentChunks(spec.ordinals, await buildFactors(ctx));
      await writePartialSums(ctx.artifacts, name, await shardSums(ctx.pool, chunks));
      return { sequences: spec.ordinals.length, tokens: spec.ordinals.reduce((s, o) => s + ctx.store.tokens(o).length, 0) };
    }
    case "projection": {
      const factors = await buildFactors(ctx);
      let moments: ReturnType<WhitenedMomentAccumulator["finish"]> | undefined;
      if (p.projection.basis === "pca") {
        const sums = new WhitenedMomentAccumulator(factors);
        await mergeShards(ctx, "pca", (partial) => sums.merge(partial));
        moments = sums.finish();
      }
      await saveProjections(outDir, p, factors, moments);
      return NOTHING;
    }
    case "vectors": {
      await mkdir(indexPath(outDir, "shards"), { recursive: true });
      return ctx.pool.run<Covered>("shard", shardJob(outDir, p, spec.shard, spec));
    }
    case "merge-vectors":
      await mergeShardVectors(
        outDir,
        p,
        ordinalRanges(plan.counts.sequences, p.shardSize).map((_, shard) => shard),
      );
      return NOTHING;
    case "hnsw":
      await buildGraph(outDir, p, spec.graph);
      return NOTHING;
    case "finish": {
      const jobs = await listBuildJobs(ctx.db, ctx.buildId);
      for (const phase of new Set(jobs.map((j) => phaseOf(j.spec as JobSpec)))) {
        const kinds = [...new Set(jobs.filter((j) => j.phase === phase).map((j) => (j.spec as JobSpec).kind))];
        if (phase !== "manifest") await recordBuildPhase(ctx.db, ctx.buildId, phase, spanSeconds(jobs, kinds));
      }
      await completeIndex(ctx.db, ctx.buildId, outDir, p, { model: plan.model, corpus: plan.corpus, counts: plan.counts, databaseUrl: plan.databaseUrl });
      await ctx.artifacts.clear();
      return NOTHING;
    }
  }
}
