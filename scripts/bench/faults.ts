/**
 * Fault outcomes, measured: what users see, and how long it takes, when `influence serve` is killed
 * with SIGKILL mid-query, when its PostgreSQL stops under load, when an index file is corrupt at
 * start-up, when a build meets a full disk or a read-only folder, and when a corpus holds garbage.
 * The assertions live in tests/reliability-*.test.ts; this prints the numbers. Needs root (tmpfs and
 * read-only bind mounts), on the fixture model gpt2-tiny over a small text corpus.
 */
import { cp, readFile, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { runBuild } from "../../src/indexer/build.js";
import { readIndexManifest } from "../../src/indexer/index-manifest.js";
import { tempDir } from "../../src/util/temp-dir.js";
import { startPrivatePostgres } from "../../tests/helpers/db.js";
import { loopRequests } from "../../tests/helpers/reliability-load.js";
import { controlPostgres, mountReadOnly, mountSmallDisk } from "../../tests/helpers/reliability-system.js";
import {
  RELIABILITY_DOCUMENTS,
  flipByte,
  health,
  reliabilityBuildArgs,
  reliabilityBuildJob,
  runInfluence,
  serveIndex,
  spawnInfluence,
  waitFor,
  writeReliabilityCorpus,
} from "../../tests/helpers/reliability.js";
import type { BenchSection } from "../bench.js";

const QUERY = JSON.stringify({
  query: `{ influence(prompt: "The cat", completion: " sat on the mat", candidates: 24) { hits { rank score sequence { id } } } }`,
});
const LOOKUPS = [`{ sequences(first: 5, search: "fox") { totalCount } }`, `{ sequence(id: "doc-3") { id text } }`].map((query) => JSON.stringify({ query }));

const seconds = (since: number) => ((performance.now() - since) / 1000).toFixed(1);
/** The error line a user reads (the CLI's own), with temporary folders shortened. */
const errorLine = (text: string) => {
  const lines = text.trim().split("\n");
  return (lines.find((l) => l.startsWith("influence: ")) ?? lines[0]).replace(/\/tmp\/[^/\s]+/g, "<tmp>");
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function ask(url: string): Promise<string> {
  const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: QUERY });
  return JSON.stringify((await res.json()).data?.influence?.hits ?? null);
}

const section: BenchSection = {
  title: "Faults: kill -9, database outage, damaged files, full disk, garbage input",
  async run() {
    const tmp = await tempDir("influence-bench-faults-");
    const rows: string[] = [];
    const add = (fault: string, outcome: string, time: string) => rows.push(`| ${fault} | ${outcome} | ${time} |`);
    const postgres = await startPrivatePostgres();
    const disk = await mountSmallDisk(path.join(tmp.dir, "disk"), 64 << 20);
    try {
      const corpus = await writeReliabilityCorpus(path.join(tmp.dir, "corpus.jsonl"));
      const indexDir = path.join(tmp.dir, "index");
      let t = performance.now();
      const reference = await runBuild(reliabilityBuildJob(corpus, indexDir));
      add(
        "(reference build, embedded PGlite, no fault)",
        `${reference.corpus.sequences} sequences, vectors ${reference.vectors.checksum.slice(0, 12)}`,
        `${seconds(t)} s`,
      );
      for (const name of ["corrupt-vectors", "corrupt-hnsw"]) await cp(indexDir, path.join(tmp.dir, name), { recursive: true });

      // kill -9 in the middle of a query, restart on the same folder.
      t = performance.now();
      let server = await serveIndex(indexDir);
      const started = seconds(t);
      const before = await ask(server.graphqlUrl);
      const inFlight = Array.from({ length: 3 }, () => ask(server.graphqlUrl).catch(() => "cut"));
      await waitFor(async () => ((await health(server.url)).body.engine?.busy ?? 0) > 0, "a busy engine", 10_000);
      const killedPid = server.pid;
      server.child.kill("SIGKILL");
      await server.exited;
      const cut = (await Promise.all(inFlight)).filter((r) => r === "cut").length;
      t = performance.now();
      server = await serveIndex(indexDir);
      const after = await ask(server.graphqlUrl);
      const lock = JSON.parse(await readFile(path.join(indexDir, "db", "influence.lock"), "utf8")) as { pid: number };
      const same = after === before ? "the same top-10, same scores" : "DIFFERENT hits";
      const takenOver = lock.pid === server.pid ? "the new process" : "ANOTHER process";
      add(
        "`kill -9` of `influence serve` during 3 queries, then restart",
        `${cut} of 3 connections cut; restarted: ${same}; PGlite lock taken over from dead pid ${killedPid} by ${takenOver}`,
        `start ${started} s; restart to first answer ${seconds(t)} s`,
      );
      await server.stop();

      // Damaged files at start-up.
      for (const [name, file] of [
        ["corrupt-vectors", "vectors.bin"],
        ["corrupt-hnsw", "hnsw.bin.layer-0"],
      ]) {
        await flipByte(path.join(tmp.dir, name, file), 100);
        t = performance.now();
        const run = await runInfluence(["serve", "--index", path.join(tmp.dir, name), "--port", "0"], { timeoutMs: 120_000 });
        add(`one flipped byte in \`${file}\`, then \`influence serve\``, `exit ${run.code}: \`${errorLine(run.stderr)}\``, `refused in ${seconds(t)} s`);
      }

      // A corpus with binary garbage on line 4.
      const garbage = path.join(tmp.dir, "garbage.jsonl");
      const good = RELIABILITY_DOCUMENTS.slice(0, 3)
        .map((d) => JSON.stringify(d) + "\n")
        .join("");
      await writeFile(garbage, Buffer.concat([Buffer.from(good), Buffer.from([0x00, 0xff, 0xfe, 0xc3, 0x28, 0x0a]), Buffer.from(good)]));
      t = performance.now();
      const garbageRun = await runInfluence(reliabilityBuildArgs(garbage, path.join(tmp.dir, "garbage-index")));
      add(
        "`influence build` of a JSONL corpus with binary garbage",
        `exit ${garbageRun.code}: \`${errorLine(garbageRun.stderr)}\`; no manifest.json`,
        `refused in ${seconds(t)} s`,
      );

      // A full disk mid-build, then a read-only shards folder, then --resume (sequences in PostgreSQL).
      const faultyDir = path.join(disk.dir, "index");
      const args = reliabilityBuildArgs(corpus, faultyDir, ["--database", postgres.url]);
      const build = spawnInfluence(args);
      await waitFor(async () => (await readdir(path.join(faultyDir, "shards")).catch(() => [])).some((f) => f.endsWith(".bin")), "the first shard", 300_000);
      await disk.fill();
      const filledAt = performance.now();
      const full = await build.exited;
      const kept = (await readdir(path.join(faultyDir, "shards"))).filter((f) => /^vectors-\d+\.bin$/.test(f)).length;
      add(
        "disk (64 MiB tmpfs) filled once the first vector shard is written",
        `exit ${full.code}: \`${errorLine(build.stderr())}\`; ${kept} finished shard(s) kept, no vectors.bin or manifest`,
        `failed ${seconds(filledAt)} s after the disk filled`,
      );
      await disk.free();
      const readOnlyShards = await mountReadOnly(path.join(faultyDir, "shards"));
      t = performance.now();
      const readOnly = await runInfluence([...args, "--resume"]).finally(() => readOnlyShards.undo());
      add(
        "`--resume` with space back but `shards/` mounted read-only",
        `exit ${readOnly.code}: \`${errorLine(readOnly.stderr)}\``,
        `refused in ${seconds(t)} s`,
      );
      t = performance.now();
      const resumed = await runInfluence([...args, "--resume"]);
      const manifest = await readIndexManifest(faultyDir);
      add(
        "`--resume` once writable again",
        `exit ${resumed.code}; vectors checksum ${manifest.vectors.checksum === reference.vectors.checksum ? "identical to the reference build's" : "DIFFERENT from the reference build's"}`,
        `${seconds(t)} s`,
      );

      // PostgreSQL stopped for 3 s under load (2 clients listing and looking up, 2 asking influence).
      server = await serveIndex(faultyDir);
      const pg = await controlPostgres(postgres.url);
      let done = false;
      const load = Promise.all([
        loopRequests(server.graphqlUrl, LOOKUPS, 2, () => done, 30_000),
        loopRequests(server.graphqlUrl, [QUERY], 2, () => done, 30_000),
      ]);
      await sleep(1000);
      await pg.stop();
      const downAt = performance.now();
      await sleep(3000);
      await pg.start();
      const upAt = performance.now();
      const lookup = () => fetch(server.graphqlUrl, { method: "POST", headers: { "content-type": "application/json" }, body: LOOKUPS[0] });
      await waitFor(async () => (await lookup()).status === 200, "recovery", 60_000);
      const recoveredAt = performance.now();
      await sleep(2000);
      done = true;
      const answers = (await load).flat();
      const during = answers.filter((a) => a.sentAt >= downAt && a.sentAt < upAt);
      const kinds = new Map<string, number>();
      for (const a of during) kinds.set(a.kind.replace(/:.*/s, ""), (kinds.get(a.kind.replace(/:.*/s, "")) ?? 0) + 1);
      const afterwards = answers.filter((a) => a.sentAt > recoveredAt);
      const whileDown = [...kinds].map(([k, n]) => `${n} × ${k}`).join(", ");
      const slowest = (Math.max(...answers.map((a) => a.ms)) / 1000).toFixed(1);
      add(
        "PostgreSQL stopped (fast shutdown) for 3 s under 4 clients, then started",
        `${answers.length} answers; sent while down: ${whileDown} (an ok one reached the database after it was back); slowest answer ${slowest} s; ` +
          `after recovery ${afterwards.filter((a) => a.kind === "ok").length}/${afterwards.length} ok; server pid unchanged: ${server.child.exitCode === null ? "yes" : "NO"}`,
        `recovered ${((recoveredAt - upAt) / 1000).toFixed(2)} s after PostgreSQL was back`,
      );
      await server.stop();
    } finally {
      await disk.unmount();
      await postgres.stop();
      await tmp.remove();
    }
    return [
      "Outcomes of the faults tested in `tests/reliability-*.test.ts`, with timings, on gpt2-tiny over a 24-document corpus.",
      "",
      "| fault | outcome | time |",
      "| --- | --- | --- |",
      ...rows,
    ].join("\n");
  },
};

export default section;
