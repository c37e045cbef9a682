import { afterEach, describe, expect, it } from "vitest";
import { PoolBusyError, PoolClosedError, PoolTimeoutError, WorkerCrashedError } from "../src/workers/errors.js";
import { WorkerPool, type WorkerPoolOptions } from "../src/workers/worker-pool.js";
import { WorkerError } from "../src/workers/worker-protocol.js";
import { toServerError } from "../src/server/errors.js";
import { InputError } from "../src/util/errors.js";
import { spawnTsWorker } from "../src/workers/spawn-worker.js";

const WORKER = new URL("./fixtures/server-pool-worker.ts", import.meta.url);

const pools: WorkerPool[] = [];
let spawned = 0;

function pool(options: Partial<WorkerPoolOptions> & { workerData?: object } = {}): WorkerPool {
  const { workerData = {}, ...rest } = options;
  const created = new WorkerPool({
    size: 1,
    maxQueue: 4,
    timeoutMs: 10_000,
    spawn: () => {
      spawned++;
      return spawnTsWorker(WORKER, workerData);
    },
    ...rest,
  });
  pools.push(created);
  return created;
}

afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close()));
  spawned = 0;
});

/** The error `promise` rejects with. */
async function failure(promise: Promise<unknown>): Promise<Error> {
  return promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (err: Error) => err,
  );
}

const echo = (p: WorkerPool) => p.run<{ threadId: number }>("echo", null);

describe("WorkerPool", () => {
  it("runs queued requests in FIFO order and reports its load", async () => {
    const p = pool({ maxQueue: 3 });
    const done: string[] = [];
    const runs = ["a", "b", "c", "d"].map((label) => p.run<string>("sleep", { label, ms: 30 }).then((l) => void done.push(l)));
    expect(p.metrics()).toEqual({ size: 1, workers: 1, busy: 1, queued: 3, maxQueue: 3 });
    await Promise.all(runs);
    expect(done).toEqual(["a", "b", "c", "d"]);
    expect(p.metrics()).toMatchObject({ busy: 0, queued: 0 });
  });

  it("runs requests on different workers at once", async () => {
    const p = pool({ size: 2 });
    const threads = await Promise.all([echo(p), echo(p)]);
    expect(new Set(threads.map((t) => t.threadId)).size).toBe(2);
    const spins = [p.run("spin", { label: "a", ms: 300 }), p.run("spin", { label: "b", ms: 300 })];
    expect(p.metrics()).toMatchObject({ workers: 2, busy: 2, queued: 0 });
    expect(await Promise.all(spins)).toEqual(["a", "b"]);
  });

  it("queues without limit and waits without a time limit when asked to, as a batch job does", async () => {
    const p = pool({ maxQueue: Infinity, timeoutMs: undefined });
    const labels = Array.from({ length: 6 }, (_, i) => `job ${i}`);
    const runs = labels.map((label) => p.run<string>("sleep", { label, ms: 20 }));
    expect(p.metrics()).toMatchObject({ busy: 1, queued: 5, maxQueue: Infinity });
    expect(await Promise.all(runs)).toEqual(labels);
  });

  it("refuses a request with PoolBusyError when the queue is full", async () => {
    const p = pool({ maxQueue: 1 });
    const running = p.run("sleep", { label: "running", ms: 200 });
    const queued = p.run("sleep", { label: "queued", ms: 10 });
    const refused = await failure(p.run("echo", null));
    expect(refused).toBeInstanceOf(PoolBusyError);
    expect(refused).toMatchObject({ running: 1, waiting: 1, message: "all 1 worker threads are busy and 1 requests are waiting" });
    expect(await Promise.all([running, queued])).toEqual(["running", "queued"]);
  });

  it("fails a request that runs too long with PoolTimeoutError at once, and lets its worker finish it before the next", async () => {
    const p = pool({ timeoutMs: 500 });
    const first = await echo(p);
    const timedOut = await failure(p.run("spin", { label: "runaway", ms: 1_500 }));
    expect(timedOut).toBeInstanceOf(PoolTimeoutError);
    expect(timedOut).toMatchObject({ timeoutMs: 500, message: "no answer from the worker thread within 500 ms" });
    // Still running the request: never terminated inside a run (an ONNX Runtime run would abort the process).
    expect(p.metrics()).toMatchObject({ workers: 1, busy: 1 });
    // The next request waits for that worker (with time to spare), which then serves it.
    const next = await p.run<{ threadId: number }>("echo", null, { timeoutMs: 10_000 });
    expect(next.threadId).toBe(first.threadId);
    expect(p.metrics()).toMatchObject({ workers: 1, busy: 0 });
    expect(spawned).toBe(1);
  });

  it("leaves a worker that has not answered yet to finish loading; requests waiting for it time out", async () => {
    const p = pool({ timeoutMs: 300, workerData: { loadMs: 1_000 } });
    const [first, queued] = await Promise.all([failure(echo(p)), failure(echo(p))]);
    expect([first, queued].map((e) => e instanceof PoolTimeoutError)).toEqual([true, true]);
    expect(p.metrics()).toMatchObject({ workers: 1, busy: 1, queued: 0 });
    // Once loaded, the same worker answers.
    await expect.poll(() => p.metrics().busy, { timeout: 3_000 }).toBe(0);
    expect(await p.run("sleep", { label: "loaded", ms: 1 })).toBe("loaded");
    expect(spawned).toBe(1);
  });

  it.each([
    ["exits", "exit", /died \(exit code 3\)/],
    ["throws an uncaught exception", "uncaught", /died \(Error: exploded\)/],
  ])("fails the request of a worker that %s with WorkerCrashedError and replaces the worker", async (_what, method, message) => {
    const p = pool();
    const first = await echo(p);
    const crashed = await failure(p.run(method, null));
    expect(crashed).toBeInstanceOf(WorkerCrashedError);
    expect(crashed).toMatchObject({ when: "running", message: expect.stringMatching(message) });
    await expect.poll(() => p.metrics().workers).toBe(1); // replaced right away: it had been up
    expect((await echo(p)).threadId).not.toBe(first.threadId);
  });

  it("does not respawn in a loop a worker that dies before answering", async () => {
    const p = pool({ workerData: { exitOnStart: true } });
    await expect.poll(() => p.metrics().workers).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(spawned).toBe(1);
    // The next request starts one again, and learns why it fails.
    const crashed = await failure(echo(p));
    expect(crashed).toBeInstanceOf(WorkerCrashedError);
    expect(crashed).toMatchObject({ when: "running", message: expect.stringMatching(/exit code 2/) });
    expect(spawned).toBe(2);
  });

  it("passes errors back: InputError as InputError, others with their name and message", async () => {
    const p = pool();
    const bad = await failure(p.run("badInput", null));
    expect(bad).toBeInstanceOf(InputError);
    expect(bad.message).toBe("layer 9 is not in the index");
    const failed = await failure(p.run("fail", null));
    expect(failed).toBeInstanceOf(WorkerError);
    expect(failed).toMatchObject({ remoteName: "TypeError", message: "boom" });
    expect(failed.stack).toMatch(/^TypeError: boom\n\s+at .*server-pool-worker\.ts/);
    expect((await failure(p.run("nope", null))).message).toMatch(/no method "nope" \(it has echo, sleep/);
    expect((await failure(p.run("unclonable", null))).message).toMatch(/could not be cloned/);
    expect((await failure(p.run("echo", { f: () => 1 }))).message).toMatch(/could not be cloned/);
    expect(await p.run("sleep", { label: "still fine", ms: 1 })).toBe("still fine");
  });

  it("fails waiting and running requests with PoolClosedError on close", async () => {
    const p = pool();
    await echo(p);
    const running = failure(p.run("sleep", { label: "x", ms: 5_000 }));
    const queued = failure(p.run("sleep", { label: "y", ms: 5_000 }));
    await p.close();
    expect([await running, await queued].map((e) => e instanceof PoolClosedError)).toEqual([true, true]);
    expect(await failure(echo(p))).toBeInstanceOf(PoolClosedError);
    expect(p.metrics()).toMatchObject({ workers: 0, busy: 0, queued: 0 });
  });

  it("lets running requests finish before terminating when closed with finishRunning, failing the waiting ones", async () => {
    const p = pool();
    await echo(p);
    const running = p.run("sleep", { label: "finished", ms: 300 });
    const queued = failure(p.run("sleep", { label: "y", ms: 300 }));
    await p.close({ finishRunning: true });
    expect(await running).toBe("finished");
    expect(await queued).toBeInstanceOf(PoolClosedError);
    expect(p.metrics()).toMatchObject({ workers: 0, busy: 0, queued: 0 });
  });
});

describe("toServerError", () => {
  it("maps the pool's errors to the server's codes and words", () => {
    const cases: Array<[Error, string, string]> = [
      [new PoolBusyError(2, 64), "SERVER_BUSY", "the engine is busy (2 running, 64 waiting); retry shortly"],
      [new PoolTimeoutError(400), "TIMEOUT", "the engine did not answer within 400 ms"],
      [new PoolClosedError(), "SHUTTING_DOWN", "the engine is shutting down"],
      [new WorkerCrashedError("running", "exit code 3"), "WORKER_CRASHED", "the engine worker running this request died (exit code 3); it is being replaced"],
      [new WorkerCrashedError("starting", "out of memory"), "WORKER_CRASHED", "could not start an engine worker: out of memory"],
    ];
    for (const [error, code, message] of cases) {
      const mapped = toServerError(error);
      expect({ code: mapped.code, message: mapped.message, status: mapped.extensions.http?.status }).toEqual({
        code,
        message,
        status: code === "WORKER_CRASHED" ? undefined : code === "TIMEOUT" ? 504 : 503,
      });
    }
  });
});
