import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { REPO_ROOT } from "./fixtures.js";

export const WEB_ROOT = path.join(REPO_ROOT, "dist/web");
const SOURCES = path.join(REPO_ROOT, "web");

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const file = path.join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(file) : statSync(file).mtimeMs);
  }
  return newest;
}

/**
 * dist/web as the sources make it: `npm ci` builds it (the prepare script), but a clone installed
 * with --ignore-scripts has none, and an edit under web/ leaves it stale; then build it here.
 */
export function ensureWebBuild(): string {
  const index = path.join(WEB_ROOT, "index.html");
  if (existsSync(index) && statSync(index).mtimeMs >= newestMtime(SOURCES)) return WEB_ROOT;
  const vite = path.join(REPO_ROOT, "node_modules/vite/bin/vite.js");
  // NODE_ENV: vitest sets "test", which would make Vite bundle React's development build.
  const env = { ...process.env, NODE_ENV: "production" };
  const result = spawnSync(process.execPath, [vite, "build", "--config", "web/vite.config.ts", "--logLevel", "warn"], {
    cwd: REPO_ROOT,
    env,
    encoding: "utf8",
  });
  if (result.status !== 0) throw new Error(`building the web UI failed:\n${result.stdout}${result.stderr}`);
  return WEB_ROOT;
}
