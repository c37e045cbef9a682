/**
 * `npm run bench [-- --only a,b]`: runs the benchmark sections in scripts/bench/ and writes their
 * results into BENCHMARKS.md with the machine, the date and the compute engine. Sections not run
 * this time keep their previous results (each carries its own date).
 */
import { readFile, readdir } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ort from "onnxruntime-node";
import { deviceFromEnv } from "../src/runtime/device.js";
import { writeFileAtomic } from "../src/util/atomic-write.js";

export interface BenchSection {
  /** Markdown body of the section (without its heading). */
  run(): Promise<string>;
  title: string;
}

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
  const only = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1].split(",") : undefined;
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
    const body = await section.run();
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
