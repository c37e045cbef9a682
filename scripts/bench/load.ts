/**
 * `influence serve` under load: autocannon on loopback against a real server process (default
 * settings: 2 engine workers, 64 queued, 60 s timeout), `influence` (top-10, the default query,
 * several prompts) and `sequences` (pages, searches) at 8, 32 and 128 concurrent clients for 30 s
 * each. autocannon stops waiting at the end of a run; the server's own request counter, read once it
 * is idle again, tells whether it answered every request sent all the same.
 * On the demo index (.demo/index) when it has been built, else on a small fixture index built here.
 *
 * INFLUENCE_BENCH_LOAD_SECONDS shortens the runs (for trying the script out).
 */
import { existsSync } from "node:fs";
import path from "node:path";
import { runBuild } from "../../src/jobs/build.js";
import { indexPath, readIndexManifest } from "../../src/indexer/index-manifest.js";
import { tempDir } from "../../src/util/temp-dir.js";
import { type LoadResult, runLoadOnServer } from "../../support/reliability-load.js";
import { type ServeProcess, reliabilityBuildJob, residentBytes, serveIndex, writeReliabilityCorpus } from "../../support/reliability.js";
import type { BenchSection } from "../bench.js";
import { sketchText } from "../bench-util.js";
import { REPO_ROOT } from "../../support/fixtures.js";

const SECONDS = Number(process.env.INFLUENCE_BENCH_LOAD_SECONDS ?? 30);
const CLIENTS = [8, 32, 128];
const PROMPTS = [
  ["dog, domestic dog (noun):", " a member of the genus Canis"],
  ["Paris (noun):", " the capital and largest city of France"],
  ["can, tin (noun):", " airtight sealed metal container for food"],
  ["The cat", " sat on the mat"],
  ["Prices rose", " by ten percent this year"],
  ["man, adult male (noun):", " an adult person who is male"],
];
const SEARCHES = ["fox", "100%", "dog", "the", "snake_case", "capital"];

const INFLUENCE = `query Influence($prompt: String!, $completion: String!) {
  influence(prompt: $prompt, completion: $completion, topK: 10) { hits { rank score sequence { id } } timings { totalMs } }
}`;
const SEQUENCES = `query Sequences($after: String, $search: String) {
  sequences(first: 20, after: $after, search: $search) { totalCount edges { node { id text } } pageInfo { endCursor } }
}`;

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : "-");

async function post(url: string, body: string): Promise<{ data?: any; errors?: unknown[] }> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body });
  return res.json() as Promise<{ data?: any; errors?: unknown[] }>;
}

/** The demo index if built, else a fixture index in `tmp`; and a line saying which. */
async function chooseIndex(tmp: string): Promise<{ dir: string; what: string }> {
  const demo = path.join(REPO_ROOT, ".demo/index");
  if (existsSync(indexPath(demo, "manifest"))) {
    const m = await readIndexManifest(demo);
    return {
      dir: demo,
      what: `the demo index (\`.demo/index\`: ${m.corpus.sequences} sequences, ${m.vectors.dim} dims and ${sketchText(m)}, model ${path.basename(m.model.path)})`,
    };
  }
  const dir = path.join(tmp, "index");
  console.error("load: .demo/index not built (npm run demo -- --build-only); building a fixture index");
  const m = await runBuild(reliabilityBuildJob(await writeReliabilityCorpus(path.join(tmp, "corpus.jsonl")), dir));
  return {
    dir,
    what:
      `a fixture index built for this run (gpt2-tiny over the reliability tests' ${m.corpus.sequences}-document text corpus, ${m.vectors.dim} ` +
      `dims), since \`.demo/index\` was not built`,
  };
}

async function bodies(server: ServeProcess): Promise<{ influence: string[]; sequences: string[] }> {
  const influence = PROMPTS.map(([prompt, completion]) => JSON.stringify({ query: INFLUENCE, variables: { prompt, completion } }));
  // Pages: the first and the next four, through their cursors.
  const cursors: Array<string | undefined> = [undefined];
  for (let i = 0; i < 4; i++) {
    const page = await post(server.graphqlUrl, JSON.stringify({ query: SEQUENCES, variables: { after: cursors[i] } }));
    const next = page.data?.sequences.pageInfo.endCursor as string | null;
    if (!next) break;
    cursors.push(next);
  }
  const pages = cursors.map((after) => JSON.stringify({ query: SEQUENCES, variables: { after } }));
  const searches = SEARCHES.map((search) => JSON.stringify({ query: SEQUENCES, variables: { search } }));
  return { influence, sequences: pages.flatMap((p, i) => [p, searches[i % searches.length]]) };
}

function row(endpoint: string, r: LoadResult & { neverAnswered: number }): string {
  const cells = [
    endpoint,
    r.connections,
    r.sent,
    r.answered,
    r.ok,
    r.busy,
    r.failures,
    r.unfinished,
    r.neverAnswered,
    ms(r.latencyMs.p50),
    ms(r.latencyMs.p95),
    ms(r.latencyMs.p99),
    r.throughput.toFixed(1),
    mib(r.peakRssBytes),
  ];
  return `| ${cells.join(" | ")} |`;
}

const section: BenchSection = {
  title: "Load: influence serve under concurrent clients",
  async run() {
    const tmp = await tempDir("influence-bench-load-");
    let server: ServeProcess | undefined;
    try {
      const index = await chooseIndex(tmp.dir);
      server = await serveIndex(index.dir);
      const { influence, sequences } = await bodies(server);
      // Warm both engine workers up: their first query compiles kernels.
      const warm = await Promise.all(influence.slice(0, 2).map((b) => post(server!.graphqlUrl, b)));
      const sample = await post(server.graphqlUrl, influence[0]);
      if (sample.errors || warm.some((w) => w.errors))
        throw new Error(`the warm-up query failed: ${JSON.stringify(sample.errors ?? warm.map((w) => w.errors))}`);
      const startRss = await residentBytes(server.pid);
      const rows: string[] = [];
      const failures: string[] = [];
      for (const [endpoint, list] of [
        ["influence", influence],
        ["sequences", sequences],
      ] as const) {
        for (const connections of CLIENTS) {
          console.error(`load: ${endpoint} at ${connections} clients for ${SECONDS} s`);
          // It waits until the server is idle: requests whose clients left at the end are still computed, not the next run's load.
          const result = await runLoadOnServer(server, { connections, seconds: SECONDS, bodies: [...list] }, [endpoint], 180_000);
          rows.push(row(endpoint, result));
          failures.push(...result.failureSamples.map((f) => `${endpoint} at ${connections}: ${f}`));
        }
      }
      const { peak } = await residentBytes(server.pid);
      return [
        `Index: ${index.what}. Server: \`influence serve --index ... --port 0\` with its defaults (2 engine workers, 64 requests queued, ` +
          `60 s timeout), a separate process; autocannon on 127.0.0.1, ${SECONDS} s per run, each run after the previous one's abandoned requests finished.`,
        "",
        `- influence: \`topK: 10\` (the default: the index alone, 1,000 candidates re-scored by the sketch), ${PROMPTS.length} prompts in turn; sample query ` +
          `${(sample.data.influence.timings.totalMs as number).toFixed(0)} ms in the engine when idle.`,
        `- sequences: pages of 20 (the first and next ones by cursor) alternating with ${SEARCHES.length} searches.`,
        `- 503 = coded back-pressure (SERVER_BUSY); "other failures" counts every other answer (any GraphQL error, 5xx, connection error); ` +
          `"unfinished" were sent but not answered when the run ended (autocannon stops waiting then: one in flight per client at most); ` +
          `"never answered" were sent but are missing from the server's count of answered requests (\`influence_graphql_requests_total\`, ` +
          `every outcome), read after the run until it covers them (at most 3 minutes): requests the server lost.`,
        `- Server RSS: ${mib(startRss.current)} after warm-up, peak (VmHWM) ${mib(peak)} over all runs; the column is the highest VmRSS sampled ` +
          `during the run.`,
        "",
        "| endpoint | clients | sent | answered | 2xx | 503 busy | other failures | unfinished | never answered | p50 ms | p95 ms | p99 ms | answers/s | peak RSS |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ...rows,
        "",
        failures.length ? `Failures seen:\n\n${failures.map((f) => `- ${f}`).join("\n")}` : "No failures other than coded SERVER_BUSY.",
      ].join("\n");
    } finally {
      await server?.stop();
      await tmp.remove();
    }
  },
};

export default section;
