import type { Command } from "commander";
import { openDatabase } from "../../db/index.js";
import { buildsProgress } from "../../jobs/distributed/status.js";
import { formatDuration } from "../progress.js";
import { formatTable } from "../table.js";
import { integer } from "../options.js";

/** `influence build status`: where distributed builds stand, from the database their workers share. */
export function registerBuildStatus(build: Command): void {
  // The build command's own options come before `status`; after it they are the subcommand's (as in main.ts).
  build.enablePositionalOptions();
  build
    .command("status")
    .description("phase, jobs done / running / failed, per-worker throughput and time left of distributed builds")
    .requiredOption("--database <url>", "the PostgreSQL URL the build was planned in")
    .option("--build <id>", "one build (default: every distributed build, newest first)", integer(1))
    .option("--json", "print JSON instead of tables", false)
    .action(async (opts) => {
      const db = await openDatabase({ url: opts.database });
      try {
        const builds = await buildsProgress(db, opts.build);
        if (opts.json) return console.log(JSON.stringify(builds, null, 2));
        if (builds.length === 0) return console.log(`no distributed builds in ${db.location}`);
        for (const b of builds) {
          const left = b.stageSecondsLeft === null ? "unknown yet" : formatDuration(b.stageSecondsLeft);
          console.log(`build ${b.buildId}: ${b.status}, phase ${b.phase} (stage ${b.stage}), ${b.outDir}`);
          console.log(
            `  jobs: ${b.jobs.done} done, ${b.jobs.running} running, ${b.jobs.queued} queued, ${b.jobs.failed} failed of ${b.jobs.total} queued so far`,
          );
          if (b.status === "running") console.log(`  time left in this phase: ${left}`);
          if (b.error) console.log(`  error: ${b.error}`);
          if (b.workers.length > 0) {
            const rows = b.workers.map((w) => [
              w.worker,
              String(w.jobsDone),
              String(w.sequences),
              String(w.tokens),
              w.seconds.toFixed(1),
              w.tokensPerSecond.toFixed(1),
            ]);
            const columns = ["worker", "jobs", "sequences", "tokens", "job s", "tokens/s"].map((header, i) => ({
              header,
              align: i === 0 ? ("left" as const) : ("right" as const),
            }));
            console.log(formatTable(columns, rows).replace(/^/gm, "  "));
          }
        }
      } finally {
        await db.close();
      }
    });
}
