/**
 * The folder of an `influence evaluate` run: its settings, the model fine-tuned on the whole corpus,
 * its factors and scores, and one file per finished subset fine-tuning. Every file is written
 * atomically, so a run killed at any point resumes from what is there.
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, readFile, rename, rm } from "node:fs/promises";
import path from "node:path";
import { writeJsonAtomic } from "../../util/atomic-write.js";
import { InputError } from "../../util/errors.js";

export const outPaths = (dir: string) => ({
  settings: path.join(dir, "settings.json"),
  fullModel: path.join(dir, "full-model"),
  factors: (fisher: string) => path.join(dir, `factors-${fisher}`),
  index: (fisher: string) => path.join(dir, `index-${fisher}`),
  scores: (key: string) => path.join(dir, "scores", `${key}.json`),
  subset: (k: number) => path.join(dir, "subsets", `${String(k).padStart(4, "0")}.json`),
});

async function readJson<T>(file: string): Promise<T | undefined> {
  if (!existsSync(file)) return undefined;
  return JSON.parse(await readFile(file, "utf8")) as T;
}

/** Records the settings of a new run, or checks that a resumed run has the same ones. */
export async function claimSettings(dir: string, settings: Record<string, unknown>): Promise<void> {
  const file = outPaths(dir).settings;
  const previous = await readJson<Record<string, unknown>>(file);
  if (previous === undefined) {
    await writeJsonAtomic(file, settings);
    return;
  }
  const keys = [...new Set([...Object.keys(previous), ...Object.keys(settings)])];
  const changed = keys.filter((k) => JSON.stringify(previous[k]) !== JSON.stringify(settings[k]));
  if (changed.length > 0) {
    throw new InputError(
      `${dir} holds an evaluation with other settings (${changed.join(", ")} differ); rerun with the settings of ${file}, or use another --out ` +
        `(nothing was changed)`,
    );
  }
}

export interface SubsetResult {
  subset: number;
  /** Ordinals of the corpus sequences the subset's model was fine-tuned on, ascending. */
  members: number[];
  /** Each query's measured loss (summed completion NLL) after the fine-tuning. */
  losses: number[];
}

export const readSubset = (dir: string, k: number) => readJson<SubsetResult>(outPaths(dir).subset(k));

export async function writeSubset(dir: string, result: SubsetResult): Promise<void> {
  const file = outPaths(dir).subset(result.subset);
  await mkdir(path.dirname(file), { recursive: true });
  await writeJsonAtomic(file, result);
}

export interface StoredScores {
  queries: string[];
  train: string[];
  scores: number[][];
}

export const readScores = (dir: string, key: string) => readJson<StoredScores>(outPaths(dir).scores(key));

export async function writeScores(dir: string, key: string, scores: StoredScores): Promise<void> {
  const file = outPaths(dir).scores(key);
  await mkdir(path.dirname(file), { recursive: true });
  await writeJsonAtomic(file, scores);
}

/**
 * Writes a model folder by `write` into a temporary sibling, then renames it into place: the
 * folder exists only complete. `copied` files of `sourceDir` (tokenizer, config) are copied in.
 */
export async function writeFolderAtomic(target: string, sourceDir: string, copied: readonly string[], write: (dir: string) => Promise<void>): Promise<void> {
  const tmp = `${target}.partial`;
  await rm(tmp, { recursive: true, force: true });
  await write(tmp);
  for (const file of copied) if (existsSync(path.join(sourceDir, file))) await copyFile(path.join(sourceDir, file), path.join(tmp, file));
  await rename(tmp, target);
}
