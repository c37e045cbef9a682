/**
 * `npm run bench [-- --only a,b] [--baseline DIR]`: runs the benchmark sections in scripts/bench/
 * and writes their results into BENCHMARKS.md with the machine, the date and the compute engine.
 * Sections not run this time keep their previous results (each carries its own date). With
 * `--baseline`, sections that can (demo) also run another checkout of this project (an earlier
 * commit, with its own `npm ci`) in the same run and show its figures beside this one's.
 */
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ort from "onnxruntime-node";
import { deviceFromEnv } from "../src/runtime/device.js";
import { writeFileAtomic } from "../src/util/atomic-write.js";

export interface BenchContext {
  /** Another checkout of this project to measure beside this one, where a section supports it. */
  baseline?: { dir: string; commit: string };
}

export interface BenchSection {
  /** Markdown body of the section (without its heading). */
  run(context: BenchContext): Promise<string>;
  title: string;
}

/** The --baseline checkout and its commit; refused unless it is a checkout of this project with its dependencies installed. */
function baselineOf(dir: string | undefined): BenchContext["baseline"] {
  if (dir === undefined) return undefined;
  const root = path.resolve(dir);
  if (!existsSync(path.join(root, "bin", "influence.js")) || !existsSync(path.join(root, "node_modules"))) {
    throw new Error(`--baseline ${dir}: not a checkout of this project with its dependencies installed (run npm ci there)`);
  }
  return { dir: root, commit: execFileSync("git", ["-C", root, "rev-parse", "--short", "HEAD"], { encoding: "utf8" }).trim() };
}

const optionValue = (name: string) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined);

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const outFile = path.join(root, "BENCHMARKS.md");
const marker = (name: string, edge: "begin" | "end") => `<!-- bench:${name}:${edge} -->`;

function machineLine(): string {
  const cpus = os.cpus();
  return [
    `- Machine: ${cpus[0]?.model ?? "unknown CPU"}, ${cpus.length} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, ${os.platform()} ${os.release()}`,
    `- Node ${process.version}, ONNX Runtime ${ort.env.versions.node} on device \`${deviceFromEnv()}\``,
  ].join("\n");
}

function previousSections(text: string): Map<string, string> {
  const found = new Map<string, string>();
  const re = /<!-- bench:([\w-]+):begin -->\n([\s\S]*?)<!-- bench:\1:end -->/g;
  for (const m of text.matchAll(re)) found.set(m[1], m[2]);
  return found;
}

async function main(): Promise<void> {
  const only = optionValue("--only")?.split(",");
  const context: BenchContext = { baseline: baselineOf(optionValue("--baseline")) };
  const dir = path.join(root, "scripts", "bench");
  const names = (await readdir(dir))
    .filter((f) => f.endsWith(".ts"))
    .map((f) => f.slice(0, -3))
    .sort();
  const unknown = (only ?? []).filter((n) => !names.includes(n));
  if (unknown.length) throw new Error(`unknown bench section(s): ${unknown.join(", ")}; known: ${names.join(", ")}`);
  const previous = previousSections(await readFile(outFile, "utf8").catch(() => ""));
  const sections = new Map(previous);
  const date = new Date().toISOString().slice(0, 10);
  for (const name of names) {
    if (only && !only.includes(name)) continue;
    const section = ((await import(path.join(dir, `${name}.ts`))) as { default: BenchSection }).default;
    console.error(`bench: ${name} ...`);
    const body = await section.run(context);
    sections.set(name, `## ${section.title}\n\n_Measured ${date}._\n${machineLine()}\n\n${body.trim()}\n`);
    await write(sections);
  }
}

async function write(sections: Map<string, string>): Promise<void> {
  const parts = [...sections.keys()].sort().map((name) => `${marker(name, "begin")}\n${sections.get(name)}${marker(name, "end")}`);
  const head =
    `# Benchmarks\n\nWritten by \`npm run bench\` (\`npm run bench -- --only <section>\` re-runs one section). Each section names the ` +
    `machine, the date and the compute engine it ran on.\n`;
  await writeFileAtomic(outFile, `${head}\n${parts.join("\n\n")}\n`);
}

await main();
