/**
 * `npm run demo` from nothing to a served index, as a newcomer runs it after `npm ci`: the demo
 * script builds the index into an empty folder and starts the server; the README's demo queries
 * are then asked of the dashboard's GraphQL endpoint, with the server's own timings of each stage.
 * A second run shows the reuse. With `--baseline`, the same steps run in the baseline checkout
 * (its code, its own index) right after, and its figures stand beside this checkout's.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFile, readdir, stat } from "node:fs/promises";
import path from "node:path";
import { tempDir } from "../../src/util/temp-dir.js";
import type { BenchContext, BenchSection } from "../bench.js";
import { DEMO_QUERIES } from "../demo-queries.js";
import { REPO_ROOT } from "../../support/fixtures.js";
import { median } from "../../support/percentile.js";

interface DemoRun {
  child: ChildProcess;
  /** Seconds from the spawn to the "serving" line. */
  servingAfter: number;
  url: string;
}

/** `npm run demo -- --index DIR --port 0` in checkout `root`, resolved once it prints its dashboard URL. */
async function startDemo(root: string, indexDir: string): Promise<DemoRun> {
  const t0 = performance.now();
  const child = spawn("npm", ["run", "--silent", "demo", "--", "--index", indexDir, "--port", "0"], {
    cwd: root,
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

interface Answer {
  seconds: number;
  ids: string[];
  /** The server's own timings of the query's stages. */
  gradientMs: number;
  searchMs: number;
}

/** A README demo query through GraphQL (the default: the index alone), checked against its expected hits. */
async function ask(url: string, q: (typeof DEMO_QUERIES)[number]): Promise<Answer> {
  const t0 = performance.now();
  const res = await fetch(`${url}/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      query:
        `{ influence(prompt: ${JSON.stringify(q.prompt)}, completion: ${JSON.stringify(q.completion)}, topK: 10) ` +
        "{ hits { sequence { id } } timings { gradientMs searchMs } } }",
    }),
  });
  const body = (await res.json()) as {
    data?: { influence: { hits: Array<{ sequence: { id: string } }>; timings: { gradientMs: number; searchMs: number } } };
    errors?: unknown[];
  };
  if (!body.data) throw new Error(`the demo query failed: ${JSON.stringify(body.errors)}`);
  const ids = body.data.influence.hits.map((h) => h.sequence.id);
  const missing = q.expected.filter((id) => !ids.includes(id));
  if (missing.length) throw new Error(`the demo query's top 10 lacks ${missing.join(", ")}: ${ids.join(", ")}`);
  return { seconds: (performance.now() - t0) / 1000, ids, ...body.data.influence.timings };
}

/** What the index manifest says of the build (read as JSON: a baseline's manifest may be of another version). */
interface BuildRecord {
  corpus: { sequences: number; tokens: number };
  build: { seconds: number; phaseSeconds: Record<string, number> };
}

interface DemoFigures {
  build: BuildRecord;
  servingAfter: number;
  firstQuery: Answer;
  /** The four README queries asked twice after the first: medians of the second round. */
  gradientMs: number;
  searchMs: number;
  /** Bytes of the index's files (not its database) per sequence. */
  bytesPerSequence: number;
  reuseServingAfter: number;
}

/** Bytes of the files at the top of an index folder (vectors, sketch, graphs, tokens, projections). */
async function topFilesBytes(dir: string): Promise<number> {
  const entries = await readdir(dir, { withFileTypes: true });
  const sizes = await Promise.all(entries.filter((e) => e.isFile()).map(async (e) => (await stat(path.join(dir, e.name))).size));
  return sizes.reduce((a, b) => a + b, 0);
}

const PHASES = ["ingest", "factors", "projection", "vectors", "hnsw"];

/** Every step of the section, in checkout `root`, on a fresh index. */
async function demoFigures(root: string): Promise<DemoFigures> {
  const tmp = await tempDir("influence-bench-demo-");
  try {
    const indexDir = path.join(tmp.dir, "index");
    const first = await startDemo(root, indexDir);
    const dashboard = await fetch(`${first.url}/`);
    const page = await dashboard.text();
    if (!dashboard.ok || !page.includes("<html")) throw new Error(`the dashboard did not load: HTTP ${dashboard.status}`);
    const firstQuery = await ask(first.url, DEMO_QUERIES[0]);
    const warm: Answer[] = [];
    for (let round = 0; round < 2; round++) {
      warm.length = 0;
      for (const q of DEMO_QUERIES) warm.push(await ask(first.url, q));
    }
    await stopDemo(first);
    const second = await startDemo(root, indexDir);
    await stopDemo(second);
    const build = JSON.parse(await readFile(path.join(indexDir, "manifest.json"), "utf8")) as BuildRecord;
    const bytesPerSequence = (await topFilesBytes(indexDir)) / build.corpus.sequences;
    return {
      build,
      servingAfter: first.servingAfter,
      firstQuery,
      gradientMs: median(warm.map((a) => a.gradientMs)),
      searchMs: median(warm.map((a) => a.searchMs)),
      bytesPerSequence,
      reuseServingAfter: second.servingAfter,
    };
  } finally {
    await tmp.remove();
  }
}

/** The rows of the table, one cell per checkout measured. */
function rows(runs: DemoFigures[]): string[] {
  const cells = (f: (d: DemoFigures) => string) => runs.map(f).join(" | ");
  const { corpus } = runs[0].build;
  const q = DEMO_QUERIES[0];
  return [
    `| first run: build the index (${corpus.sequences} sequences, ${corpus.tokens} tokens) and serve, s | ${cells((d) => d.servingAfter.toFixed(1))} |`,
    `| of which the build, s | ${cells((d) => d.build.build.seconds.toFixed(1))} |`,
    `| build phases (${PHASES.join(" / ")}), s | ${cells((d) => PHASES.map((p) => (d.build.build.phaseSeconds[p] ?? 0).toFixed(0)).join(" / "))} |`,
    `| index pass: tokens/s of the vectors phase (2 workers) | ${cells((d) => (d.build.corpus.tokens / (d.build.build.phaseSeconds.vectors ?? Number.NaN)).toFixed(0))} |`,
    `| \`influence(prompt: ${JSON.stringify(q.prompt)}, completion: ${JSON.stringify(q.completion)}, topK: 10)\`, first query of the new server, s | ${cells((d) => d.firstQuery.seconds.toFixed(2))} |`,
    `| query gradient, ms (median of the ${DEMO_QUERIES.length} README queries, warm) | ${cells((d) => d.gradientMs.toFixed(0))} |`,
    `| search, with the sketch's re-scoring of the candidates where the checkout has one, ms (same queries) | ${cells((d) => d.searchMs.toFixed(0))} |`,
    `| index files (no database) per sequence, KB | ${cells((d) => (d.bytesPerSequence / 1024).toFixed(1))} |`,
    `| second run: reuse the index and serve, s | ${cells((d) => d.reuseServingAfter.toFixed(1))} |`,
  ];
}

const section: BenchSection = {
  title: "Demo: from `npm run demo` to a served index",
  async run({ baseline }: BenchContext) {
    const runs = [await demoFigures(REPO_ROOT)];
    if (baseline) runs.push(await demoFigures(baseline.dir));
    const header = baseline ? `| step | this checkout | baseline ${baseline.commit} |\n| --- | ---: | ---: |` : "| step | this checkout |\n| --- | ---: |";
    return [
      "`npm run demo -- --index <empty folder> --port 0` (the committed demo model and corpus, embedded PGlite), timed from the spawn of npm " +
        "until the server prints its URLs; then the dashboard page, the README's first demo query, and all four README queries twice over " +
        "HTTP (the server's own stage timings of the second round).",
      ...(baseline ? ["", `Baseline: commit ${baseline.commit} (\`--baseline ${baseline.dir}\`), measured right after this checkout in the same run.`] : []),
      "",
      header,
      ...rows(runs),
      "",
      `Top 10 of the first query: ${runs[0].firstQuery.ids.join(", ")}.`,
    ].join("\n");
  },
};

export default section;
