/**
 * `npm run demo` from nothing to a served index, as a newcomer runs it after `npm ci`: the demo
 * script builds the index into an empty folder and starts the server; the README's first demo
 * query is then asked of the dashboard's GraphQL endpoint. A second run shows the reuse.
 */
import { type ChildProcess, spawn } from "node:child_process";
import path from "node:path";
import { readIndexManifest } from "../../src/indexer/index-manifest.js";
import { tempDir } from "../../src/util/temp-dir.js";
import type { BenchSection } from "../bench.js";
import { DEMO_QUERIES } from "../demo-queries.js";
import { repoRoot } from "./util.js";

interface DemoRun {
  child: ChildProcess;
  /** Seconds from the spawn to the "serving" line. */
  servingAfter: number;
  url: string;
}

/** `npm run demo -- --index DIR --port 0`, resolved once it prints its dashboard URL. */
async function startDemo(indexDir: string): Promise<DemoRun> {
  const t0 = performance.now();
  const child = spawn("npm", ["run", "--silent", "demo", "--", "--index", indexDir, "--port", "0"], {
    cwd: repoRoot(),
    stdio: ["ignore", "ignore", "pipe"],
    detached: true,
  });
  let stderr = "";
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
      const m = /dashboard\s+(http:\/\/\S+)\//.exec(stderr);
      if (m) resolve(m[1]);
    });
    child.once("exit", (code) => reject(new Error(`npm run demo exited (${code}) before serving:\n${stderr.slice(-2000)}`)));
  });
  return { child, servingAfter: (performance.now() - t0) / 1000, url };
}

async function stopDemo(run: DemoRun): Promise<void> {
  const exited = new Promise((resolve) => run.child.once("exit", resolve));
  process.kill(-run.child.pid!, "SIGTERM"); // npm, tsx and node: the whole group
  await exited;
}

/** The README's first demo query through GraphQL: seconds and the top hit ids. */
async function askFirstQuery(url: string): Promise<{ seconds: number; ids: string[] }> {
  const q = DEMO_QUERIES[0];
  const t0 = performance.now();
  const res = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      query: `{ influence(prompt: ${JSON.stringify(q.prompt)}, completion: ${JSON.stringify(q.completion)}, topK: 10) { hits { sequence { id } } } }`,
    }),
  });
  const body = (await res.json()) as { data?: { influence: { hits: Array<{ sequence: { id: string } }> } }; errors?: unknown[] };
  if (!body.data) throw new Error(`the demo query failed: ${JSON.stringify(body.errors)}`);
  const ids = body.data.influence.hits.map((h) => h.sequence.id);
  const missing = q.expected.filter((id) => !ids.includes(id));
  if (missing.length) throw new Error(`the demo query's top 10 lacks ${missing.join(", ")}: ${ids.join(", ")}`);
  return { seconds: (performance.now() - t0) / 1000, ids };
}

const section: BenchSection = {
  title: "Demo: from `npm run demo` to a served index",
  async run() {
    const tmp = await tempDir("influence-bench-demo-");
    try {
      const indexDir = path.join(tmp.dir, "index");
      const first = await startDemo(indexDir);
      const dashboard = await fetch(`${first.url}/`);
      const page = await dashboard.text();
      if (!dashboard.ok || !page.includes("<html")) throw new Error(`the dashboard did not load: HTTP ${dashboard.status}`);
      const answer = await askFirstQuery(first.url);
      await stopDemo(first);
      const second = await startDemo(indexDir);
      await stopDemo(second);
      const m = await readIndexManifest(indexDir);
      const phases = ["ingest", "factors", "projection", "vectors", "hnsw"].map((p) => `${p} ${(m.build.phaseSeconds[p] ?? 0).toFixed(0)} s`).join(", ");
      const q = DEMO_QUERIES[0];
      return [
        "`npm run demo -- --index <empty folder> --port 0` (the committed demo model and corpus, embedded PGlite), timed from the spawn of npm until the server prints its URLs; then the dashboard page and the README's first demo query over HTTP.",
        "",
        "| step | seconds |",
        "| --- | ---: |",
        `| first run: build the index (${m.corpus.sequences} sequences, ${m.corpus.tokens} tokens) and serve | ${first.servingAfter.toFixed(1)} |`,
        `| of which the build (${phases}) | ${m.build.seconds.toFixed(1)} |`,
        `| \`influence(prompt: ${JSON.stringify(q.prompt)}, completion: ${JSON.stringify(q.completion)}, topK: 10)\`, first query of the new server | ${answer.seconds.toFixed(1)} |`,
        `| second run: reuse the index and serve | ${second.servingAfter.toFixed(1)} |`,
        "",
        `Top 10 of the query: ${answer.ids.join(", ")}.`,
      ].join("\n");
    } finally {
      await tmp.remove();
    }
  },
};

export default section;
