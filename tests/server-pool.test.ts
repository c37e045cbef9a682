import { afterEach, describe, expect, it } from "vitest";
import { ServerError } from "../src/server/errors.js";
import { WorkerPool, type WorkerPoolOptions } from "../src/server/worker-pool.js";
import { WorkerError } from "../src/server/worker-protocol.js";
import { InputError } from "../src/util/errors.js";
import { spawnTsWorker } from "../src/util/spawn-worker.js";

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

  it("refuses a request with SERVER_BUSY when the queue is full", async () => {
    const p = pool({ maxQueue: 1 });
    const running = p.run("sleep", { label: "running", ms: 200 });
    const queued = p.run("sleep", { label: "queued", ms: 10 });
    const refused = await failure(p.run("echo", null));
    expect(refused).toBeInstanceOf(ServerError);
    expect(refused).toMatchObject({ code: "SERVER_BUSY", message: expect.stringMatching(/busy \(1 running, 1 waiting\)/) });
    expect(await Promise.all([running, queued])).toEqual(["running", "queued"]);
  });

  it("fails a request that runs too long with TIMEOUT and replaces its worker", async () => {
    const p = pool({ timeoutMs: 500 });
    const first = await echo(p);
    const timedOut = await failure(p.run("spin", { label: "runaway", ms: 10_000 }));
    expect(timedOut).toMatchObject({ code: "TIMEOUT", message: "the engine did not answer within 500 ms" });
    const next = await echo(p);
    // A new worker answers: the runaway one was terminated, not waited for.
    expect(next.threadId).not.toBe(first.threadId);
    expect(p.metrics()).toMatchObject({ workers: 1, busy: 0 });
  });

  it("leaves a worker that has not answered yet to finish loading; requests waiting for it time out", async () => {
    const p = pool({ timeoutMs: 300, workerData: { loadMs: 1_000 } });
    const [first, queued] = await Promise.all([failure(echo(p)), failure(echo(p))]);
    expect([first, queued].map((e) => (e as ServerError).code)).toEqual(["TIMEOUT", "TIMEOUT"]);
    expect(p.metrics()).toMatchObject({ workers: 1, busy: 1, queued: 0 });
    // Once loaded, the same worker answers.
    await expect.poll(() => p.metrics().busy, { timeout: 3_000 }).toBe(0);
    expect(await p.run("sleep", { label: "loaded", ms: 1 })).toBe("loaded");
    expect(spawned).toBe(1);
  });

  it.each([
    ["exits", "exit", /died \(exit code 3\)/],
    ["throws an uncaught exception", "uncaught", /died \(Error: exploded\)/],
  ])("fails the request of a worker that %s with WORKER_CRASHED and replaces the worker", async (_what, method, message) => {
    const p = pool();
    const first = await echo(p);
    const crashed = await failure(p.run(method, null));
    expect(crashed).toMatchObject({ code: "WORKER_CRASHED", message: expect.stringMatching(message) });
    await expect.poll(() => p.metrics().workers).toBe(1); // replaced right away: it had been up
    expect((await echo(p)).threadId).not.toBe(first.threadId);
  });

  it("does not respawn in a loop a worker that dies before answering", async () => {
    const p = pool({ workerData: { exitOnStart: true } });
    await expect.poll(() => p.metrics().workers).toBe(0);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(spawned).toBe(1);
    // The next request starts one again, and learns why it fails.
    expect(await failure(echo(p))).toMatchObject({ code: "WORKER_CRASHED", message: expect.stringMatching(/exit code 2/) });
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

  it("fails waiting and running requests with SHUTTING_DOWN on close", async () => {
    const p = pool();
    await echo(p);
    const running = failure(p.run("sleep", { label: "x", ms: 5_000 }));
    const queued = failure(p.run("sleep", { label: "y", ms: 5_000 }));
    await p.close();
    expect([(await running) as ServerError, (await queued) as ServerError].map((e) => e.code)).toEqual(["SHUTTING_DOWN", "SHUTTING_DOWN"]);
    expect(await failure(echo(p))).toMatchObject({ code: "SHUTTING_DOWN" });
    expect(p.metrics()).toMatchObject({ workers: 0, busy: 0, queued: 0 });
  });
});
