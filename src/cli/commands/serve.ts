import type { Command } from "commander";
import { defaultWebRoot, type IndexFolder, namedIndexFolders, startIndexServer } from "../../http/open-index-server.js";
import { planServeMemory } from "../../engine/serve-memory.js";
import { formatBytes } from "../../util/memory.js";
import { memoryBudget } from "../../jobs/memory-plan.js";
import { checkBudget, plannedMemory } from "../../model/memory-estimate.js";
import { closeOnSignals } from "../../http/shutdown.js";
import { deviceOption, indexFolders, integer, logMemoryPlan, memoryOption, modelRuntime, notice } from "../options.js";

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("serve indexes over GraphQL (/graphql), with the dashboard (/), the playground (/playground), /healthz and /metrics")
    .requiredOption(
      "--index <[name=]dir>",
      "index folder made by `influence build`, named after the folder unless NAME= is given (repeatable: the first is the default of queries that name none)",
      indexFolders,
    )
    .option("--database <url>", "PostgreSQL URL of every index (default: each index's embedded database, or the server it was built with)")
    .option("--port <n>", "TCP port (0 for any free port)", integer(0, 65535), 4000)
    .option("--host <host>", "interface to bind; 0.0.0.0 exposes the server beyond this machine", "127.0.0.1")
    .option("--api-key <key>", "require this key on /graphql and /metrics (Authorization: Bearer <key> or x-api-key); also INFLUENCE_API_KEY")
    .option("--cors-origin <origin...>", "browser origins allowed to call the API (repeatable; * for any)")
    .option(
      "--workers <n>",
      "engine worker threads of each index (each holds its own model, HNSW graphs and token store, and runs on its share of the cores)",
      integer(1, 64),
      2,
    )
    .addOption(deviceOption())
    .option("--max-queue <n>", "requests that may wait for a worker before SERVER_BUSY", integer(0), 64)
    .option("--timeout <ms>", "per-request limit in milliseconds, queueing included", integer(1), 60_000)
    .option("--max-body <bytes>", "largest request body", integer(1), 100_000)
    .addOption(memoryOption("the server"))
    .action(async (opts) => {
      const budget = memoryBudget(opts.memory);
      const dirs = namedIndexFolders(opts.index).map((f) => f.dir);
      const { sharing, estimate, perWorker } = await planServeMemory(dirs, opts.workers, budget, opts.database);
      checkBudget("serve", estimate, budget, "serve fewer indexes or use fewer --workers (each holds its own model, HNSW graphs and token store)");
      logMemoryPlan({ estimate }, budget);
      if (sharing === "shared") {
        notice(
          `a copy of each index's factors and vectors per worker would need about ${formatBytes(perWorker.bytes)}, ` +
            `more than ${budget.source} allows: the workers share one copy (less memory, slower exact scoring)`,
        );
      }
      const { device } = modelRuntime(opts.device, opts.workers * opts.index.length);
      const server = await startIndexServer({
        indexes: opts.index,
        databaseUrl: opts.database,
        host: opts.host,
        port: opts.port,
        apiKey: opts.apiKey ?? (process.env.INFLUENCE_API_KEY || undefined),
        corsOrigins: opts.corsOrigin,
        workers: opts.workers,
        device,
        maxQueue: opts.maxQueue,
        timeoutMs: opts.timeout,
        maxBodyBytes: opts.maxBody,
        webRoot: defaultWebRoot(),
        memory: plannedMemory(budget, estimate),
        arraySharing: sharing,
      });
      const served = opts.index.map((index: IndexFolder) => (index.name ? `${index.name}=${index.dir}` : index.dir)).join(", ");
      console.error(`influence: serving ${served}\n  GraphQL    ${server.graphqlUrl}\n  dashboard  ${server.url}/\n  playground ${server.url}/playground`);
      closeOnSignals(server, (line) => console.error(`influence: ${line}`));
    });
}
