/** The `influence` command line as users run it (bin/influence.js), for tests that drive it. */
import { execFile } from "node:child_process";
import path from "node:path";
import { REPO_ROOT } from "./fixtures.js";

export const INFLUENCE_BIN = path.join(REPO_ROOT, "bin/influence.js");

/** The environment of a command run by a test: without the runtime line every command prints first. */
export const CLI_ENV = { ...process.env, INFLUENCE_QUIET: "1" };

/** Runs `influence ARGS` to its end. */
export function influence(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [INFLUENCE_BIN, ...args], { env: CLI_ENV, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}
