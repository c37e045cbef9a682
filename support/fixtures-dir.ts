/**
 * Where the reference fixtures are, from the two documented places only: the folder named by
 * INFLUENCE_FIXTURES, else ../shared/fixtures beside the repository.
 */
import { existsSync } from "node:fs";
import path from "node:path";

/** A file every fixture set has; its absence means the folder is not the fixtures. */
export const FIXTURES_MARKER = path.join("gpt2-tiny", "expected.safetensors");

/** The fixtures folder, or an error that names the folder looked at, the missing file and the fix. */
export function locateFixtures(repoRoot: string, env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.INFLUENCE_FIXTURES;
  if (fromEnv) {
    const dir = path.resolve(fromEnv);
    if (existsSync(path.join(dir, FIXTURES_MARKER))) return dir;
    throw new Error(
      `INFLUENCE_FIXTURES=${fromEnv}: not the reference fixtures (${path.join(dir, FIXTURES_MARKER)} is missing); point it at the folder that holds gpt2-tiny/`,
    );
  }
  const beside = path.resolve(repoRoot, "../shared/fixtures");
  if (existsSync(path.join(beside, FIXTURES_MARKER))) return beside;
  throw new Error(
    `reference fixtures not found: ${path.join(beside, FIXTURES_MARKER)} is missing; put the fixtures in ${beside} or set INFLUENCE_FIXTURES to their folder`,
  );
}
