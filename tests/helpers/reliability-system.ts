/**
 * Faults of the machine for the reliability tests (root only, like CI here): a small disk that
 * can be filled, a folder made read-only, and a PostgreSQL server stopped and started again.
 */
import { execFile } from "node:child_process";
import { mkdir, open, readFile, readdir, rm } from "node:fs/promises";
import path from "node:path";

function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, (err, stdout, stderr) => (err ? reject(new Error(`${command} ${args.join(" ")}: ${stderr || err.message}`)) : resolve(stdout)));
  });
}

export interface SmallDisk {
  /** Where it is mounted. */
  dir: string;
  /** Writes a filler file until the disk is full (ENOSPC). */
  fill(): Promise<void>;
  /** Deletes the filler. */
  free(): Promise<void>;
  unmount(): Promise<void>;
}

/** A tmpfs of `bytes` mounted on the new folder `dir` (needs root): writes beyond it fail with ENOSPC. */
export async function mountSmallDisk(dir: string, bytes: number): Promise<SmallDisk> {
  await mkdir(dir, { recursive: true });
  await run("mount", ["-t", "tmpfs", "-o", `size=${bytes},mode=0755`, "tmpfs", dir]);
  const filler = path.join(dir, "filler");
  return {
    dir,
    async fill() {
      const handle = await open(filler, "a");
      try {
        // Large chunks first, then smaller ones into the last free pages.
        for (const size of [1 << 20, 1 << 12]) {
          const chunk = Buffer.alloc(size);
          for (;;) {
            try {
              await handle.write(chunk);
            } catch (err) {
              if ((err as NodeJS.ErrnoException).code === "ENOSPC") break;
              throw err;
            }
          }
        }
      } finally {
        await handle.close();
      }
    },
    free: () => rm(filler, { force: true }),
    // Lazy (and with whatever is mounted inside): a process that still holds a file in it does not keep the test from finishing.
    unmount: () => run("umount", ["-l", dir]).then(() => undefined),
  };
}

/**
 * Makes `dir` read-only for every process, root included (root ignores permission bits), with a
 * read-only bind mount of the folder onto itself; `undo` unmounts it.
 */
export async function mountReadOnly(dir: string): Promise<{ undo(): Promise<void> }> {
  await run("mount", ["--bind", dir, dir]);
  try {
    await run("mount", ["-o", "remount,bind,ro", dir]);
  } catch (err) {
    await run("umount", [dir]);
    throw err;
  }
  return { undo: () => run("umount", [dir]).then(() => undefined) };
}

export interface PostgresControl {
  /** Fast shutdown (sessions terminated), waiting until the server is down. */
  stop(): Promise<void>;
  /** Starts it again with the same data directory and options, waiting until it accepts connections. */
  start(): Promise<void>;
}

/**
 * Stops and starts a local PostgreSQL server (e.g. startPrivatePostgres's) found by its URL's
 * port: the postmaster's command line gives its binaries, data directory and options.
 */
export async function controlPostgres(url: string): Promise<PostgresControl> {
  const port = new URL(url).port;
  let args: string[] | undefined;
  for (const pid of (await readdir("/proc")).filter((p) => /^\d+$/.test(p))) {
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).split("\0").filter(Boolean);
    if (cmdline[0]?.endsWith("/postgres") && cmdline[cmdline.indexOf("-p") + 1] === port && cmdline.includes("-D")) args = cmdline;
  }
  if (!args) throw new Error(`no postmaster listening on port ${port} found in /proc`);
  const dataDir = args[args.indexOf("-D") + 1];
  const options = args.slice(1).filter((_, i, all) => all[i] !== "-D" && all[i - 1] !== "-D");
  const pgCtl = path.join(path.dirname(args[0]), "pg_ctl");
  // PostgreSQL refuses to run as root: its tools run as the owner of the data directory.
  const asOwner = (tool: string, toolArgs: string[]) =>
    process.getuid?.() === 0 ? run("runuser", ["-u", "postgres", "--", tool, ...toolArgs]) : run(tool, toolArgs);
  const log = path.join(path.dirname(dataDir), "server.log");
  return {
    stop: async () => void (await asOwner(pgCtl, ["stop", "-D", dataDir, "-m", "fast", "-w"])),
    start: async () => void (await asOwner(pgCtl, ["start", "-D", dataDir, "-l", log, "-o", options.join(" "), "-w"])),
  };
}
