/**
 * `influence build --distributed`: ingests the corpus (into PostgreSQL and the shared folder's token
 * store), records the plan and queues the first stage; then, unless told not to, waits for the
 * workers to finish, reporting progress in jobs.
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { corpusSource } from "../../corpus/corpus-source.js";
import {
  type Database,
  finishBuild,
  getBuild,
  migrate,
  openDatabase,
  planDistributedBuild,
  recordBuildPhase,
  refuseUsedOutDir,
  startBuild,
  upsertCorpus,
} from "../../db/index.js";
import { redactUrl } from "../../db/pool-database.js";
import { type IndexManifest, indexPath, readIndexManifest } from "../../indexer/index-manifest.js";
import { readTokenStore } from "../../indexer/token-store.js";
import { DEFAULT_BATCH_TOKENS } from "../../model/batch-budget.js";
import { describeModel } from "../../model/open-model.js";
import { lockDirectory } from "../../util/directory-lock.js";
import { InputError, errorMessage } from "../../util/errors.js";
import type { ProgressListener } from "../../util/progress.js";
import type { BuildJob } from "../build.js";
import { defaultCorpusName, fitCount, ingest, resolveParameters } from "../build-steps.js";
import { type DistributedPlan, PLAN_VERSION, type QueueSettings } from "./plan.js";
import { failBuildOfLostJobs, openQueue, queueStage } from "./queue.js";
import { buildProgress } from "./status.js";

export interface DistributedBuildJob extends Pick<BuildJob, "modelDir" | "corpusFile" | "outDir" | "corpusName" | "parameters" | "batchTokens" | "log"> {
  databaseUrl: string;
  queue: QueueSettings;
  onProgress?: ProgressListener;
}

export const DEFAULT_QUEUE_SETTINGS: QueueSettings = { jobTimeoutSeconds: 900, retries: 2 };

const OUT_FOLDER = { what: "output folder", advice: "Another `influence build` is planning or writing it: build into another folder." };

/** Plans the build and queues its first jobs; returns the build's id. */
export async function planBuild(job: DistributedBuildJob): Promise<number> {
  if (!/^postgres(ql)?:\/\//.test(job.databaseUrl))
    throw new InputError("a distributed build needs --database postgres://...: its workers share the queue there");
  const outDir = path.resolve(job.outDir);
  await mkdir(outDir, { recursive: true });
  const lock = await lockDirectory(outDir, OUT_FOLDER);
  const db = await openDatabase({ url: job.databaseUrl });
  let buildId: number | undefined;
  try {
    if (existsSync(indexPath(outDir, "manifest")))
      throw new InputError(`${outDir} already holds a complete index; build into a new folder (nothing was changed)`);
    if (existsSync(indexPath(outDir, "buildState"))) throw new InputError(`${outDir} holds an interrupted single-machine build: build into a new folder`);
    await migrate(db);
    await refuseUsedOutDir(db, outDir);
    const opened = await describeModel(job.modelDir);
    const source = await corpusSource(job.corpusFile, opened, job.parameters.maxSequences ?? undefined);
    const parameters = resolveParameters(job.parameters, opened.model.modules, { modelFingerprint: opened.fingerprint, corpusFingerprint: source.fingerprint });
    const corpus = await upsertCorpus(db, { name: job.corpusName ?? defaultCorpusName(source), sourcePath: source.path, fingerprint: source.fingerprint });
    buildId = (await startBuild(db, corpus.id, { ...parameters, distributed: true })).id;

    const t0 = performance.now();
    await ingest(db, corpus.id, source, indexPath(outDir, "tokens"), job.onProgress);
    const store = await readTokenStore(indexPath(outDir, "tokens"));
    if (store.count === 0) throw new InputError(`${source.path}: no training sequences (every document has fewer than 2 tokens?)`);
    await recordBuildPhase(db, buildId, "ingest", (performance.now() - t0) / 1000);

    const fitSequences = fitCount(parameters, store.count);
    const fitMax = fitSequences < store.count ? fitSequences : undefined;
    const fitSource = fitMax === undefined ? source : await corpusSource(job.corpusFile, opened, fitMax);
    const plan: DistributedPlan = {
      version: PLAN_VERSION,
      outDir,
      model: { dir: opened.dir, fingerprint: opened.fingerprint, modules: [...opened.model.modules] },
      corpus: { name: corpus.name, path: source.path, fingerprint: source.fingerprint },
      fitSource: { path: fitSource.path, fingerprint: fitSource.fingerprint, maxSequences: fitMax ?? null },
      parameters,
      counts: { sequences: store.count, tokens: store.totalTokens },
      fitCount: fitSequences,
      batchTokens: job.batchTokens ?? DEFAULT_BATCH_TOKENS,
      databaseUrl: redactUrl(job.databaseUrl),
      queue: job.queue,
    };
    const boss = await openQueue(job.databaseUrl);
    try {
      const id = buildId;
      await db.transaction(async (tx) => {
        await planDistributedBuild(tx, id, outDir, plan);
        await queueStage(tx, boss, id, plan, outDir, 0);
      });
    } finally {
      await boss.stop({ graceful: false, wait: true });
    }
    job.log?.(`build ${buildId}: planned into ${outDir}; start \`influence worker --database <url>\` on each machine`);
    return buildId;
  } catch (err) {
    if (buildId !== undefined) await finishBuild(db, buildId, { status: "failed", error: errorMessage(err) }).catch(() => undefined);
    throw err;
  } finally {
    await db.close();
    await lock.release();
  }
}

/** Waits for the workers to finish a build, reporting jobs done; its manifest, or the failed job's error. */
export async function waitForBuild(
  databaseUrl: string,
  buildId: number,
  { onProgress, pollSeconds = 1 }: { onProgress?: ProgressListener; pollSeconds?: number } = {},
): Promise<IndexManifest> {
  const db: Database = await openDatabase({ url: databaseUrl });
  try {
    for (;;) {
      await failBuildOfLostJobs(db, buildId);
      const progress = await buildProgress(db, buildId);
      onProgress?.({ phase: `${progress.phase} (jobs)`, done: progress.jobs.done, total: progress.jobs.total, unit: "jobs" });
      if (progress.status === "completed") return readIndexManifest(progress.outDir);
      if (progress.status === "failed") throw new Error(`build ${buildId} failed: ${(await getBuild(db, buildId))?.error ?? "no error recorded"}`);
      await sleep(pollSeconds * 1000);
    }
  } finally {
    await db.close();
  }
}
