/**
 * The web UI in a real browser against the real server over a real index of gpt2-tiny: the
 * GraphiQL playground and the influence dashboard, with no request leaving the machine.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBuild } from "../src/indexer/build.js";
import { startIndexServer } from "../src/server/open-index-server.js";
import { loadTokenizer } from "../src/tokenizer/tokenizer.js";
import { DEMO_QUERIES } from "../scripts/demo-queries.js";
import { chromiumAvailable, CHROMIUM_PATH, guardNetwork, launchChromium } from "./helpers/browser.js";
import { ensureWebBuild } from "./helpers/browser-web-build.js";
import { fixtureBuildJob } from "./helpers/fixture-index.js";
import { fixturePath, fixtureTrain, REPO_ROOT } from "./helpers/fixtures.js";
import { memoryLogger } from "./helpers/server.js";
import { tempDir } from "../src/util/temp-dir.js";

const PROMPT = "The meaning of life is";
const COMPLETION = " to love and be loved.";
const TOP_K = 4;
const SCREENSHOT = path.join(REPO_ROOT, "test-output/dashboard.png");
/** A query takes 1-4 s on an idle machine (the GPT-2 tokenizer is large), far more on a busy one. */
const SLOW = { timeout: 60_000 };

interface ApiHit {
  score: number;
  sequence: { id: string };
  tokenScores: Array<{ position: number; score: number }>;
}

if (!chromiumAvailable) {
  throw new Error(`Chromium not found at ${CHROMIUM_PATH}: install Debian's chromium (apt-get install chromium, as .ci/run does) or set CHROMIUM_PATH`);
}

describe(`the web UI in Chromium (${CHROMIUM_PATH})`, () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let server: Awaited<ReturnType<typeof startIndexServer>>;
  let browser: Browser;
  let context: BrowserContext;
  let network: Awaited<ReturnType<typeof guardNetwork>>;
  let page: Page;

  const api = async <T>(query: string, variables: object = {}): Promise<T> => {
    const res = await fetch(server.graphqlUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ query, variables }) });
    const body = (await res.json()) as { data: T; errors?: unknown[] };
    expect(body.errors).toBeUndefined();
    return body.data;
  };

  beforeAll(async () => {
    const webRoot = ensureWebBuild();
    tmp = await tempDir();
    const indexDir = path.join(tmp.dir, "index");
    await runBuild(fixtureBuildJob(fixturePath("gpt2-tiny"), indexDir));
    server = await startIndexServer({ indexDir, port: 0, workers: 2, maxQueue: 16, timeoutMs: 60_000, webRoot, logger: memoryLogger() });
    browser = await launchChromium();
    context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    network = await guardNetwork(context);
    page = await context.newPage();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await tmp?.remove();
  });

  it("runs the playground's example influence query through GraphiQL", async () => {
    await page.goto(`${server.url}/playground/`);
    await page.locator(".graphiql-query-editor .view-lines", { hasText: "influence" }).waitFor(SLOW);
    const answer = page.waitForResponse((r) => r.url() === server.graphqlUrl && (r.request().postData() ?? "").includes("influence("));
    await page.locator(".graphiql-execute-button").click();
    const body = (await (await answer).json()) as { data: { influence: { hits: unknown[] } } };
    expect(body.data.influence.hits.length).toBeGreaterThan(0);
    await page.locator(".graphiql-response .view-lines", { hasText: '"hits"' }).waitFor(SLOW);
    // Its example is a question the demo answers.
    expect(await page.locator(".graphiql-query-editor .view-lines").textContent()).toContain(DEMO_QUERIES[0].completion.trim());

    // A line longer than the editor is wide wraps onto several screen lines.
    await page.locator(".graphiql-query-editor .view-lines").click();
    await page.keyboard.press("ControlOrMeta+A");
    await page.keyboard.type(`# ${"a long comment ".repeat(40)}`);
    await expect.poll(() => page.locator(".graphiql-query-editor .view-line").count()).toBeGreaterThan(1);
    expect(network.external()).toEqual([]);
  });

  it("draws a query's hits, layers and distribution on the dashboard", async () => {
    await page.goto(`${server.url}/`);
    const layers = (await api<{ layers: Array<{ layer: number }> }>("{ layers { layer } }")).layers.map((l) => l.layer);
    await expect.poll(() => page.locator('input[name="layer"]').count(), SLOW).toBe(layers.length);
    await page.getByLabel("Prompt").fill(PROMPT);
    await page.getByLabel("Completion").fill(COMPLETION);
    await page.getByLabel("Top k").fill(String(TOP_K));
    await page.getByRole("button", { name: "Run" }).click();
    await page.locator('[data-testid="power-law"]').waitFor(SLOW);
    await page.locator('[data-testid="hit"]').nth(TOP_K - 1).waitFor(SLOW);
    expect(await page.locator('[data-testid="hit"]').count()).toBe(TOP_K);

    // The same query through the API: every token's colour must carry the sign of its score.
    const { influence } = await api<{ influence: { hits: ApiHit[] } }>(
      `query($p: String, $c: String, $k: Int) { influence(prompt: $p, completion: $c, topK: $k) { hits { score sequence { id } tokenScores { position score } } } }`,
      { p: PROMPT, c: COMPLETION, k: TOP_K },
    );
    const shown = await page.locator('[data-testid="hit"]').evaluateAll((items) =>
      items.map((item) => ({
        id: item.getAttribute("data-sequence-id"),
        score: Number(item.getAttribute("data-score")),
        tokens: Array.from(item.querySelectorAll(".token")).map((t) => ({ position: Number(t.getAttribute("data-position")), sign: t.getAttribute("data-sign"), background: getComputedStyle(t).backgroundColor })),
      })),
    );
    expect(shown.map((h) => h.id)).toEqual(influence.hits.map((h) => h.sequence.id));
    const signName = (x: number) => (x > 0 ? "pos" : x < 0 ? "neg" : "zero");
    for (const [i, hit] of influence.hits.entries()) {
      expect(shown[i].score).toBeCloseTo(hit.score, 6);
      expect(shown[i].tokens.map((t) => [t.position, t.sign])).toEqual(hit.tokenScores.map((t) => [t.position, signName(t.score)]));
    }
    const tokens = shown.flatMap((h) => h.tokens);
    expect(tokens.map((t) => t.sign)).toEqual(expect.arrayContaining(["pos", "neg"]));
    // Two hues: red for positive, blue for negative; a zero score (a sequence's last token) stays transparent.
    for (const t of tokens) {
      const [r, , b, alpha] = t.background.match(/[\d.]+/g)!.map(Number);
      const ok = t.sign === "pos" ? r > b : t.sign === "neg" ? b > r : alpha === 0;
      expect(ok, `${t.sign} token on ${t.background}`).toBe(true);
    }

    const layerChart = page.locator('[data-testid="layer-chart"]');
    expect(Number(await layerChart.getAttribute("data-bars"))).toBe(layers.length);
    expect(await layerChart.getAttribute("data-layers")).toBe(layers.join(","));
    await expect.poll(() => page.locator('[data-testid="layer-heatmap"] canvas').count()).toBeGreaterThan(0);

    const { influenceDistribution } = await api<{ influenceDistribution: { powerLaw: { alpha: number } | null } }>(
      `query($p: String, $c: String) { influenceDistribution(prompt: $p, completion: $c) { powerLaw { alpha } } }`,
      { p: PROMPT, c: COMPLETION },
    );
    expect(influenceDistribution.powerLaw).not.toBeNull();
    const fit = page.locator('[data-testid="power-law"]');
    expect(Number(await fit.getAttribute("data-alpha"))).toBeCloseTo(influenceDistribution.powerLaw!.alpha, 6);
    expect(await fit.textContent()).toContain(influenceDistribution.powerLaw!.alpha.toFixed(3));
    await expect.poll(() => page.locator('[data-testid="distribution-chart"] canvas').count()).toBeGreaterThan(0);

    const recent = page.locator('[data-testid="recent-query"]').first();
    await expect.poll(() => recent.textContent(), SLOW).toContain(`${PROMPT} ▸ ${COMPLETION}`);
    await mkdir(path.dirname(SCREENSHOT), { recursive: true });
    await page.screenshot({ path: SCREENSHOT, fullPage: true });

    // A recent query fills the form again (and runs it).
    await page.getByLabel("Prompt").fill("something else");
    await recent.click();
    expect(await page.getByLabel("Prompt").inputValue()).toBe(PROMPT);
    await page.locator('[data-testid="power-law"]').waitFor(SLOW);
    expect(network.external()).toEqual([]);
  });

  it("shows the server's message for bad input", async () => {
    /** What the API itself answers to an influence query, to find word for word in the page. */
    const refusal = async (prompt: string, completion: string) => {
      const res = await fetch(server.graphqlUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ query: "query($p: String, $c: String) { influence(prompt: $p, completion: $c) { hits { rank } } }", variables: { p: prompt, c: completion } }),
      });
      const { errors } = (await res.json()) as { errors: Array<{ message: string; extensions: { code: string } }> };
      expect(errors[0].extensions.code).toBe("BAD_USER_INPUT");
      return errors[0].message;
    };
    const submit = async (prompt: string, completion: string) => {
      await page.getByLabel("Prompt").fill(prompt);
      await page.getByLabel("Completion").fill(completion);
      await page.getByRole("button", { name: "Run" }).click();
    };
    await page.goto(`${server.url}/`);
    const alert = page.getByRole("alert");

    await submit(PROMPT, "");
    const empty = await refusal(PROMPT, "");
    await expect.poll(() => alert.textContent(), SLOW).toContain(empty);

    const long = "word ".repeat(80);
    await submit(long, COMPLETION);
    const tooLong = await refusal(long, COMPLETION);
    expect(tooLong).toMatch(/context of 64/);
    await expect.poll(() => alert.textContent(), SLOW).toContain(tooLong);
    expect(network.external()).toEqual([]);
  });
});
