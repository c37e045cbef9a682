/**
 * Load against a GraphQL server on this machine with autocannon, bounded in time, classifying every
 * answer: a success (200 with data and no errors), coded back-pressure (503 SERVER_BUSY), or a
 * failure (anything else, including GraphQL errors in a 200 and connection errors).
 */
import autocannon from "autocannon";
import { percentile } from "./percentile.js";
import { requestsAnswered, residentBytes, waitUntilIdle } from "./reliability.js";

export interface LoadOptions {
  /** The GraphQL endpoint: loopback only (tests and benchmarks never load other hosts). */
  graphqlUrl: string;
  connections: number;
  /** Run for this long, unless `amount` is given. */
  seconds: number;
  /** Stop after this many requests instead (for latency of slow queries, where a fixed time gives too few answers). */
  amount?: number;
  /** GraphQL request bodies; each connection sends them in turn, round and round. */
  bodies: string[];
  /** Sampled every 200 ms for the peak resident set size during the run. */
  serverPid?: number;
}

export interface LoadResult {
  connections: number;
  seconds: number;
  sent: number;
  answered: number;
  ok: number;
  /** 503 SERVER_BUSY: the engine's queue was full. */
  busy: number;
  /** Answers other than success and SERVER_BUSY, plus connection errors and client timeouts. */
  failures: number;
  /** Up to 5 descriptions of failures. */
  failureSamples: string[];
  /** Sent but not answered when the run ended (autocannon does not wait for them). */
  unfinished: number;
  /** Latency of answered requests, ms. */
  latencyMs: { p50: number; p95: number; p99: number };
  /** Answered requests per second. */
  throughput: number;
  /** Highest VmRSS sampled during the run, bytes (NaN without serverPid). */
  peakRssBytes: number;
}

/** What an answer is: "ok", "busy", or a description of the failure. */
export function classifyAnswer(status: number, body: string): string {
  let parsed: { data?: unknown; errors?: Array<{ message?: string; extensions?: { code?: string } }> };
  try {
    parsed = JSON.parse(body);
  } catch {
    return `${status} with a body that is not JSON: ${body.slice(0, 80)}`;
  }
  const first = parsed.errors?.[0];
  if (status === 200 && parsed.data && !first) return "ok";
  if (status === 503 && first?.extensions?.code === "SERVER_BUSY") return "busy";
  return `${status} ${first?.extensions?.code ?? "(no code)"}: ${first?.message ?? ""}`.slice(0, 200);
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  if (!/^http:\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])[:/]/.test(options.graphqlUrl))
    throw new Error(`refusing to load ${options.graphqlUrl}: loopback only`);
  let ok = 0;
  let busy = 0;
  const failureSamples: string[] = [];
  let failures = 0;
  const latencies: number[] = [];
  const onResponse = (status: number, body: string) => {
    const kind = classifyAnswer(status, body);
    if (kind === "ok") ok++;
    else if (kind === "busy") busy++;
    else if (++failures <= 5) failureSamples.push(kind);
  };
  let peakRssBytes = 0;
  const sample = async () => {
    if (options.serverPid === undefined) return;
    const { current } = await residentBytes(options.serverPid).catch(() => ({ current: 0 })); // gone: the caller will see why
    peakRssBytes = Math.max(peakRssBytes, current);
  };
  const sampler = setInterval(() => void sample(), 200);
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(
      {
        url: options.graphqlUrl,
        connections: options.connections,
        duration: options.seconds,
        ...(options.amount ? { amount: options.amount } : {}),
        // Longer than the server's own limit: slow answers come back as the server's coded TIMEOUT.
        timeout: 120,
        requests: options.bodies.map((body) => ({ method: "POST", headers: { "content-type": "application/json" }, body, onResponse })),
      },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
    instance.on("response", (_client, _status, _bytes, responseTime) => void latencies.push(responseTime));
  }).finally(() => clearInterval(sampler));
  await sample();
  const connectionErrors = result.errors;
  if (connectionErrors > 0) failureSamples.push(`${connectionErrors} connection errors (${result.timeouts} timeouts)`);
  const answered = latencies.length;
  const at = (p: number) => (answered ? percentile(latencies, p) : Number.NaN);
  return {
    connections: options.connections,
    seconds: options.seconds,
    sent: result.requests.sent,
    answered,
    ok,
    busy,
    failures: failures + connectionErrors,
    failureSamples,
    unfinished: Math.max(0, result.requests.sent - answered - connectionErrors),
    latencyMs: { p50: at(50), p95: at(95), p99: at(99) },
    throughput: answered / result.duration,
    peakRssBytes: options.serverPid === undefined ? Number.NaN : peakRssBytes,
  };
}

/**
 * runLoad against a served index and how many of the requests sent the server never answered:
 * those missing from its own count of answered requests of `operations`. autocannon stops waiting
 * at the end of a run while the server still works through the last requests (in its engine, or
 * in its database for listings), so the count is read until it covers every request sent, for at
 * most `settleMs`, and the engine is idle.
 */
export async function runLoadOnServer(
  server: { url: string; graphqlUrl: string; pid: number },
  options: Omit<LoadOptions, "graphqlUrl" | "serverPid">,
  operations: readonly string[],
  settleMs = 60_000,
): Promise<LoadResult & { neverAnswered: number }> {
  const answered = async () => (await Promise.all(operations.map((o) => requestsAnswered(server.url, o)))).reduce((a, b) => a + b, 0);
  const before = await answered();
  const result = await runLoad({ ...options, graphqlUrl: server.graphqlUrl, serverPid: server.pid });
  const deadline = Date.now() + settleMs;
  let since = (await answered()) - before;
  while (since < result.sent && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    since = (await answered()) - before;
  }
  await waitUntilIdle(server.url, Math.max(1, deadline - Date.now()));
  return { ...result, neverAnswered: result.sent - since };
}

export interface RecordedAnswer {
  /** When it was sent (performance.now()). */
  sentAt: number;
  ms: number;
  status: number;
  /** "ok", "busy" or the failure (see classifyAnswer); "no answer: ..." when the request itself failed. */
  kind: string;
}

/**
 * `clients` loops sending `bodies` in turn with fetch until `stop()` says so, each request given at
 * most `hangMs` (a request still unanswered then counts as "no answer"). For faults whose effect on
 * each request matters, where runLoad only counts.
 */
export async function loopRequests(graphqlUrl: string, bodies: string[], clients: number, stop: () => boolean, hangMs = 30_000): Promise<RecordedAnswer[]> {
  const answers: RecordedAnswer[] = [];
  const client = async (offset: number) => {
    for (let i = offset; !stop(); i++) {
      const sentAt = performance.now();
      let status = 0;
      let kind: string;
      try {
        const res = await fetch(graphqlUrl, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: bodies[i % bodies.length],
          signal: AbortSignal.timeout(hangMs),
        });
        status = res.status;
        kind = classifyAnswer(status, await res.text());
      } catch (err) {
        kind = `no answer: ${(err as Error).message}`;
      }
      answers.push({ sentAt, ms: performance.now() - sentAt, status, kind });
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
  return answers.sort((a, b) => a.sentAt - b.sentAt);
}
