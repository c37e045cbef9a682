/**
 * `npm run demo`: indexes the committed demo corpus with the committed demo model on the embedded
 * database (no server to install), then serves the dashboard and the GraphQL API. A second run
 * reuses the index; an interrupted build is resumed.
 *
 *   npm run demo [-- --port 4000] [--host 127.0.0.1] [--index .demo/index] [--build-only]
 */
import "reflect-metadata";
import path from "node:path";
import { parseArgs } from "node:util";
import { progressBars } from "../src/cli/progress.js";
import { defaultWebRoot, startIndexServer } from "../src/http/open-index-server.js";
import { closeOnSignals } from "../src/http/shutdown.js";
import { DEMO_INDEX, ensureDemoIndex } from "./demo-index.js";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: process.env.PORT ?? "4000" },
    host: { type: "string", default: "127.0.0.1" },
    index: { type: "string", default: DEMO_INDEX },
    "build-only": { type: "boolean", default: false },
  },
});

const started = performance.now();
const seconds = () => ((performance.now() - started) / 1000).toFixed(1);
const indexDir = path.resolve(values.index as string);
const bars = progressBars();
try {
  const how = await ensureDemoIndex(indexDir, { onProgress: bars.listener, log: (m) => console.error(m) });
  bars.stop();
  console.error(`demo: index ${how === "reused" ? "reused" : "built"} (${indexDir}) in ${seconds()} s`);
} finally {
  bars.stop();
}
if (!values["build-only"]) {
  const server = await startIndexServer({
    indexes: [{ dir: indexDir }],
    host: values.host as string,
    port: Number(values.port),
    workers: 2,
    maxQueue: 16,
    timeoutMs: 60_000,
    webRoot: defaultWebRoot(),
  });
  console.error(`demo: serving after ${seconds()} s`);
  console.error(`  dashboard   ${server.url}/\n  playground  ${server.url}/playground\n  GraphQL     ${server.graphqlUrl}`);
  closeOnSignals(server, (line) => console.error(`demo: ${line}`));
}
