import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../src/util/temp-dir.js";
import { FIXTURES_MARKER, locateFixtures } from "../support/fixtures-dir.js";

/** A folder laid out like the fixtures (only the file the lookup checks). */
async function fakeFixtures(dir: string): Promise<string> {
  await mkdir(path.join(dir, path.dirname(FIXTURES_MARKER)), { recursive: true });
  await writeFile(path.join(dir, FIXTURES_MARKER), "");
  return dir;
}

describe("the reference fixtures' lookup", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let repo: string; // a clone with ../shared/fixtures beside it
  let lonely: string; // a clone with nothing beside it
  beforeAll(async () => {
    tmp = await tempDir();
    repo = path.join(tmp.dir, "work", "repo");
    lonely = path.join(tmp.dir, "elsewhere", "repo");
    await mkdir(repo, { recursive: true });
    await mkdir(lonely, { recursive: true });
    await fakeFixtures(path.join(tmp.dir, "work", "shared", "fixtures"));
  });
  afterAll(() => tmp.remove());

  it("takes INFLUENCE_FIXTURES first, then ../shared/fixtures beside the repository", async () => {
    const named = await fakeFixtures(path.join(tmp.dir, "named"));
    expect(locateFixtures(repo, { INFLUENCE_FIXTURES: named })).toBe(named);
    expect(locateFixtures(lonely, { INFLUENCE_FIXTURES: named })).toBe(named);
    expect(locateFixtures(repo, {})).toBe(path.join(tmp.dir, "work", "shared", "fixtures"));
  });

  it("names the missing file and the fix, and never falls back from a wrong INFLUENCE_FIXTURES", () => {
    const empty = path.join(tmp.dir, "work");
    expect(() => locateFixtures(repo, { INFLUENCE_FIXTURES: empty })).toThrow(
      `INFLUENCE_FIXTURES=${empty}: not the reference fixtures (${path.join(empty, FIXTURES_MARKER)} is missing)`,
    );
    const beside = path.join(tmp.dir, "elsewhere", "shared", "fixtures");
    expect(() => locateFixtures(lonely, {})).toThrow(
      `reference fixtures not found: ${path.join(beside, FIXTURES_MARKER)} is missing; put the fixtures in ${beside} or set INFLUENCE_FIXTURES to their folder`,
    );
  });
});
