/**
 * HTTP latency of `influence` (top-10) on the demo index, through a real `influence serve` process:
 * p50/p95/p99 at 1 and 8 concurrent clients, with and without token scores, from the index alone
 * (the default) and with exact re-ranking. The yardstick, timed in the same run: the query's
 * gradient alone, on the engine in process. Each configuration sends a
 * fixed number of requests, prompts and completions cut from documents held out of the demo
 * model's training, so that no two consecutive requests of a client are alike.
 */
import os from "node:os";
import { IndexEngine } from "../../src/engine/index-engine.js";
import { type RuntimeOptions, workerRuntime } from "../../src/runtime/session.js";
import { checkInfluenceArgs } from "../../src/engine/query-validation.js";
import type { QueryInput } from "../../src/engine/types.js";
import { median } from "../../support/percentile.js";
import { type LoadResult, runLoad } from "../../support/reliability-load.js";
import { SERVE_WORKERS, type ServeProcess, serveIndex, waitUntilIdle } from "../../support/reliability.js";
import type { BenchSection } from "../bench.js";
import { DEMO_INDEX, ensureDemoIndex } from "../demo-index.js";
import { demoQueries, sketchText } from "../bench-util.js";
import { readIndexManifest } from "../../src/indexer/index-manifest.js";

interface Configuration {
  rerank: boolean;
  tokenScores: boolean;
  /**
   * Requests at 1 client and at 8 clients. The default query's rows run 10-15 s each: 5-s runs of it
   * at 8 clients gave p50s 20 ms apart on one server; the slower rows fewer requests.
   */
  amounts: [number, number];
}

const CONFIGURATIONS: Configuration[] = [
  { rerank: false, tokenScores: false, amounts: [300, 600] },
  { rerank: false, tokenScores: true, amounts: [20, 40] },
  { rerank: true, tokenScores: false, amounts: [8, 24] },
  { rerank: true, tokenScores: true, amounts: [8, 24] },
];
const CLIENTS = [1, 8] as const;

function influenceQuery(tokenScores: boolean): string {
  const hit = `rank score approxScore sequence { id text } layerScores { layer score }${tokenScores ? " tokenScores { position text score }" : ""}`;
  return `query Influence($p: [Int!], $c: [Int!], $rerank: Boolean!) {
  influence(promptTokens: $p, completionTokens: $c, topK: 10, rerank: $rerank) { hits { ${hit} } timings { totalMs } }
}`;
}

const bodies = (queries: QueryInput[], c: Configuration) =>
  queries.map((q) => JSON.stringify({ query: influenceQuery(c.tokenScores), variables: { p: q.promptTokens, c: q.completionTokens, rerank: c.rerank } }));

/**
 * Median ms of the query gradient (and the projections) alone, on the engine in process with
 * `runtime`, over the queries after a warm-up.
 */
async function gradientMs(queries: QueryInput[], runtime: RuntimeOptions): Promise<number> {
  // No spare core: the first tier's scan then waits for the search instead of running beside the sketch's projection.
  const engine = await IndexEngine.open(DEMO_INDEX, runtime, undefined, { spareCore: () => false });
  try {
    const times: number[] = [];
    for (const q of queries) times.push((await engine.candidates(checkInfluenceArgs({ ...q, topK: 10 }, engine.tokenizer, engine.info(), false))).gradientMs);
    return median(times.slice(5));
  } finally {
    await engine.close();
  }
}

const ms = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : "-");

function row(c: Configuration, r: LoadResult): string {
  const failed = r.failures + r.busy;
  return (
    `| ${c.rerank ? "yes" : "no"} | ${c.tokenScores ? "yes" : "no"} | ${r.connections} | ${r.answered} | ${failed} | ${ms(r.latencyMs.p50)} | ` +
    `${ms(r.latencyMs.p95)} | ${ms(r.latencyMs.p99)} | ${r.throughput.toFixed(2)} |`
  );
}

const section: BenchSection = {
  title: "HTTP latency: influence on the demo index",
  async run() {
    await ensureDemoIndex(DEMO_INDEX, { log: (m) => console.error(m) });
    const queries = await demoQueries(100);
    // ONNX Runtime's default (every core), and one thread as each of serve's 2 workers has.
    const yardstick = await gradientMs(queries.slice(0, 35), {});
    const asServed = await gradientMs(queries.slice(0, 35), workerRuntime(undefined, SERVE_WORKERS));
    let server: ServeProcess | undefined;
    try {
      server = await serveIndex(DEMO_INDEX);
      const rows: string[] = [];
      const failures: string[] = [];
      let defaultAlone: LoadResult | undefined;
      for (const c of CONFIGURATIONS) {
        const list = bodies(queries, c);
        // Warm both engine workers up: their first query compiles kernels.
        await runLoad({ graphqlUrl: server.graphqlUrl, connections: 2, seconds: 0, amount: 2, bodies: list.slice(-2) });
        for (const [i, connections] of CLIENTS.entries()) {
          console.error(`http: rerank ${c.rerank}, token scores ${c.tokenScores}, ${connections} client(s), ${c.amounts[i]} requests`);
          const result = await runLoad({ graphqlUrl: server.graphqlUrl, connections, seconds: 0, amount: c.amounts[i], bodies: list });
          rows.push(row(c, result));
          if (!c.rerank && !c.tokenScores && connections === 1) defaultAlone = result;
          failures.push(...result.failureSamples);
          await waitUntilIdle(server.url, 180_000);
        }
      }
      return [
        `\`influence serve --index .demo/index\` (6,000 WordNet entries, 16x16 PCA vectors per MLP matrix and ${sketchText(await readIndexManifest(DEMO_INDEX))}, ${SERVE_WORKERS} engine workers) as a separate process; autocannon ` +
          "on 127.0.0.1 sends a fixed number of requests per row, each a different held-out prompt (the prompt tokens and up to 8 completion " +
          "tokens), `topK: 10`, the hits with their sequences and layer scores.",
        "",
        "- re-rank no: the default, the index alone: the first tier's 1,000 best (its int8 scan) re-scored by the sketch; token scores then cost an exact pass over the " +
          "10 hits (spread over the idle engine workers).",
        "- re-rank yes: exact EK-FAC re-scoring of the sketch's best 30 candidates (their training gradients are recomputed: a forward and " +
          "backward pass over 30 sequences, dealt out to the idle engine workers).",
        "",
        `Yardstick: the query's gradient alone (forward and backward over the query, and its projections), on the engine in process in this run, ` +
          `median of 30 queries: ${yardstick.toFixed(1)} ms on ONNX Runtime's default threads (the machine's ${os.availableParallelism()} cores); ` +
          `${asServed.toFixed(1)} ms on ${workerRuntime(undefined, SERVE_WORKERS).threads} thread(s), as each of the server's ${SERVE_WORKERS} engine workers computes it.`,
        "",
        ...(defaultAlone
          ? [
              `The default query at 1 client: p50 ${defaultAlone.latencyMs.p50.toFixed(1)} ms, ${(defaultAlone.latencyMs.p50 / yardstick).toFixed(2)} times the yardstick ` +
                `(${(defaultAlone.latencyMs.p50 / asServed).toFixed(2)} times the gradient as the server's workers compute it).`,
              "",
            ]
          : []),
        "| re-rank | token scores | clients | answered | failed | p50 ms | p95 ms | p99 ms | answers/s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ...rows,
        "",
        failures.length ? `Failures seen:\n\n${failures.map((f) => `- ${f}`).join("\n")}` : "Every request answered without an error.",
      ].join("\n");
    } finally {
      await server?.stop();
    }
  },
};

export default section;
