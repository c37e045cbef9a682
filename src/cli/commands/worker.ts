import type { Command } from "commander";
import { runWorker } from "../../jobs/distributed/worker.js";
import { deviceOption, integer, modelRuntime } from "../options.js";

/** `influence worker`: runs a distributed build's jobs; exits 0 when the build completes, 1 when it fails. */
export function registerWorker(program: Command): void {
  program
    .command("worker")
    .description("run the jobs of a build planned with `influence build --distributed` (waits for one if none is planned) until it ends")
    .requiredOption("--database <url>", "the PostgreSQL URL the build was planned in")
    .option("--concurrency <n>", "jobs run at once, each on its share of the cores", integer(1, 64), 1)
    .option("--model <dir>", "the model folder on this machine (default: the planned path); its files must match the plan's fingerprint")
    .option("--shared-dir <dir>", "the build's output folder as this machine mounts it (default: the planned path)")
    .option("--build <id>", "serve this build only (default: the oldest running one)", integer(1))
    .option("--maintenance-seconds <s>", "how often to put back jobs whose worker died (past their --job-timeout)", integer(1, 3600), 10)
    .option("--poll-seconds <s>", "how often to look for jobs, a planned build and the build's end", integer(1, 3600), 2)
    .addOption(deviceOption())
    .action(async (opts) => {
      const { device } = modelRuntime(opts.device, opts.concurrency);
      const outcome = await runWorker({
        databaseUrl: opts.database,
        concurrency: opts.concurrency,
        modelDir: opts.model,
        sharedDir: opts.sharedDir,
        buildId: opts.build,
        device,
        maintenanceSeconds: opts.maintenanceSeconds,
        pollSeconds: opts.pollSeconds,
        log: (m) => console.error(m),
      });
      if (outcome.status === "failed") process.exitCode = 1;
    });
}
