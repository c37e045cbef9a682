/**
 * `npm run demo`: indexes the committed demo corpus with the committed demo model on the embedded
 * database (no server to install), then serves the dashboard and the GraphQL API. A second run
 * reuses the index; an interrupted build is resumed. With --compare it also indexes the corpus with
 * the second, smaller demo model and serves both indexes, for the dashboard's comparison view.
 *
 *   npm run demo [-- --port 4000] [--host 127.0.0.1] [--index .demo/index] [--build-only]
 *                [--compare [--small-index .demo/index-small]]
 */
import "reflect-metadata";
import path from "node:path";
import { parseArgs } from "node:util";
import { progressBars } from "../src/cli/progress.js";
import { namedIndexFolders } from "../src/http/open-index-server.js";
import { closeOnSignals } from "../src/http/shutdown.js";
import { DEMO_INDEX, DEMO_SMALL_INDEX, DEMO_SMALL_MODEL, ensureDemoIndex, serveDemo } from "./demo-index.js";

const { values } = parseArgs({
  options: {
    port: { type: "string", default: process.env.PORT ?? "4000" },
    host: { type: "string", default: "127.0.0.1" },
    index: { type: "string", default: DEMO_INDEX },
    compare: { type: "boolean", default: false },
    "small-index": { type: "string", default: DEMO_SMALL_INDEX },
    "build-only": { type: "boolean", default: false },
  },
});

const started = performance.now();
const seconds = () => ((performance.now() - started) / 1000).toFixed(1);
const builds = [{ indexDir: path.resolve(values.index as string), modelDir: undefined as string | undefined }];
if (values.compare) builds.push({ indexDir: path.resolve(values["small-index"] as string), modelDir: DEMO_SMALL_MODEL });
const bars = progressBars();
try {
  for (const { indexDir, modelDir } of builds) {
    const how = await ensureDemoIndex(indexDir, { modelDir, onProgress: bars.listener, log: (m) => console.error(m) });
    bars.stop();
    console.error(`demo: index ${how === "reused" ? "reused" : "built"} (${indexDir}) after ${seconds()} s`);
  }
} finally {
  bars.stop();
}
if (!values["build-only"]) {
  const server = await serveDemo(
    builds.map((b) => b.indexDir),
    { host: values.host as string, port: Number(values.port) },
  );
  console.error(`demo: serving after ${seconds()} s`);
  console.error(`  dashboard   ${server.url}/\n  playground  ${server.url}/playground\n  GraphQL     ${server.graphqlUrl}`);
  if (values.compare) {
    // The served indexes are named after their folders: index and index-small by default.
    const names = namedIndexFolders(builds.map((b) => ({ dir: b.indexDir }))).map((folder) => folder.name);
    console.error(`  comparison  ${server.url}/?compare=${names.map(encodeURIComponent).join(",")}`);
  }
  closeOnSignals(server, (line) => console.error(`demo: ${line}`));
}
