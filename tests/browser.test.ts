/**
 * The web UI in a real browser against the real server over real indexes of gpt2-tiny (the
 * default) and pythia-tiny, of one corpus: the GraphiQL playground and the influence dashboard,
 * with its comparison of the two, with no request leaving the machine.
 */
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runBuild } from "../src/jobs/build.js";
import { startIndexServer } from "../src/http/open-index-server.js";
import { loadTokenizer } from "../src/tokenizer/tokenizer.js";
import { DEMO_QUERIES } from "../scripts/demo-queries.js";
import { chromiumAvailable, CHROMIUM_PATH, guardNetwork, launchChromium } from "../support/browser.js";
import { ensureWebBuild } from "./helpers/browser-web-build.js";
import { fixtureBuildJob } from "../support/fixture-index.js";
import { fixturePath, fixtureTrain, REPO_ROOT } from "../support/fixtures.js";
import { memoryLogger } from "../support/server.js";
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
    // The fixture's sequences as text, so that the corpus has text to show and search.
    const tokenizer = await loadTokenizer(fixturePath("gpt2-tiny"));
    const corpusFile = path.join(tmp.dir, "train-text.jsonl");
    await writeFile(
      corpusFile,
      fixtureTrain("gpt2-tiny")
        .map((s) => JSON.stringify({ id: s.id, text: tokenizer.decode(s.tokens) }))
        .join("\n") + "\n",
    );
    await runBuild(fixtureBuildJob(fixturePath("gpt2-tiny"), indexDir, { corpusFile }));
    // pythia-tiny's tokenizer.json is GPT-2's BPE: the same texts are the same sequences.
    const pythiaDir = path.join(tmp.dir, "pythia");
    await runBuild(fixtureBuildJob(fixturePath("pythia-tiny"), pythiaDir, { corpusFile }, "pythia-tiny"));
    server = await startIndexServer({
      indexes: [{ name: "gpt2", dir: indexDir }, { dir: pythiaDir }],
      port: 0,
      workers: 1,
      maxQueue: 16,
      timeoutMs: 60_000,
      webRoot,
      logger: memoryLogger(),
    });
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
    await page
      .locator('[data-testid="hit"]')
      .nth(TOP_K - 1)
      .waitFor(SLOW);
    expect(await page.locator('[data-testid="hit"]').count()).toBe(TOP_K);

    // The same query through the API: every token's colour must carry the sign of its score.
    const { influence } = await api<{ influence: { hits: ApiHit[] } }>(
      `query($p: String, $c: String, $k: Int) { influence(prompt: $p, completion: $c, topK: $k) { hits { score sequence { id } tokenScores { ` +
        `position score } } } }`,
      { p: PROMPT, c: COMPLETION, k: TOP_K },
    );
    const shown = await page.locator('[data-testid="hit"]').evaluateAll((items) =>
      items.map((item) => ({
        id: item.getAttribute("data-sequence-id"),
        score: Number(item.getAttribute("data-score")),
        tokens: Array.from(item.querySelectorAll(".token")).map((t) => ({
          position: Number(t.getAttribute("data-position")),
          sign: t.getAttribute("data-sign"),
          background: getComputedStyle(t).backgroundColor,
        })),
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
        body: JSON.stringify({
          query: "query($p: String, $c: String) { influence(prompt: $p, completion: $c) { hits { rank } } }",
          variables: { p: prompt, c: completion },
        }),
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

  it("starts with an example the demo answers, says what to do before the first run, and runs an example in one click", async () => {
    await page.goto(`${server.url}/`);
    await page.locator('[data-testid="empty-state"]').waitFor(SLOW);
    expect(await page.locator('[data-testid="empty-state"]').textContent()).toMatch(
      /Pick one of the examples, or write a prompt and the completion.*press Run/,
    );
    expect(await page.getByLabel("Prompt").inputValue()).toBe(DEMO_QUERIES[0].prompt);
    expect(await page.getByLabel("Completion").inputValue()).toBe(DEMO_QUERIES[0].completion);
    const examples = page.locator('[data-testid="example"]');
    expect(await examples.allTextContents()).toEqual(DEMO_QUERIES.map((q) => `${q.prompt} ▸${q.completion}`));

    const example = DEMO_QUERIES[3];
    await examples.nth(3).click();
    await page.locator('[data-testid="hit"]').first().waitFor(SLOW);
    expect(await page.locator('[data-testid="empty-state"]').count()).toBe(0);
    expect(await page.getByLabel("Prompt").inputValue()).toBe(example.prompt);
    const { influence } = await api<{ influence: { hits: ApiHit[] } }>(
      `query($p: String, $c: String) { influence(prompt: $p, completion: $c, topK: 10) { hits { score sequence { id } tokenScores { position score } } } }`,
      { p: example.prompt, c: example.completion },
    );
    await expect
      .poll(() => page.locator('[data-testid="hit"]').evaluateAll((items) => items.map((i) => i.getAttribute("data-sequence-id"))), SLOW)
      .toEqual(influence.hits.map((h) => h.sequence.id));
    expect(network.external()).toEqual([]);
  });

  it("sends the re-ranking and candidates controls, and says how the hits were scored", async () => {
    await page.goto(`${server.url}/`);
    await page.getByLabel("Top k").fill("3");
    // The index alone answers unless asked.
    expect(await page.getByLabel("Re-rank exactly").isChecked()).toBe(false);
    await page.getByLabel("Candidates").fill("12");
    const sent = page.waitForRequest((r) => (r.postData() ?? "").includes("DashboardInfluence"));
    await page.getByRole("button", { name: "Run" }).click();
    expect(JSON.parse((await sent).postData()!).variables).toMatchObject({ topK: 3, rerank: false, candidates: 12 });
    await page.locator('[data-testid="hit"]').nth(2).waitFor(SLOW);
    const { influence } = await api<{ influence: { hits: Array<ApiHit & { approxScore: number }> } }>(
      `query($p: String, $c: String) { influence(prompt: $p, completion: $c, topK: 3, rerank: false, candidates: 12) { hits { score approxScore sequence { id } tokenScores { position score } } } }`,
      { p: DEMO_QUERIES[0].prompt, c: DEMO_QUERIES[0].completion },
    );
    const shown = await page.locator('[data-testid="hit"]').evaluateAll((items) => items.map((i) => i.getAttribute("data-sequence-id")));
    expect(shown).toEqual(influence.hits.map((h) => h.sequence.id));
    // Each hit names the tier that scored it, and shows no second score beside the index's own.
    expect(await page.locator('[data-testid="hit"] .score').evaluateAll((items) => items.map((i) => i.getAttribute("data-scored-by")))).toEqual(
      influence.hits.map(() => "SKETCH"),
    );
    expect(await page.locator('[data-testid="hit"] .approx').count()).toBe(0);
    expect(await page.locator(".summary").textContent()).toContain("the index's scores from 12 candidates");
    // The recent queries say it too, and list a query run twice once.
    await page.getByRole("button", { name: "Run" }).click();
    await page.locator('[data-testid="hit"]').nth(2).waitFor(SLOW);
    const recent = page.locator('[data-testid="recent-query"]');
    await expect.poll(() => recent.first().textContent(), SLOW).toContain("the index's scores from 12 candidates");
    const labels = await recent.allTextContents();
    expect(new Set(labels).size).toBe(labels.length);
    // Re-ranked, the hits are exact and show the index's score beside.
    await page.getByLabel("Re-rank exactly").check();
    const reranked = page.waitForRequest((r) => (r.postData() ?? "").includes("DashboardInfluence"));
    await page.getByRole("button", { name: "Run" }).click();
    expect(JSON.parse((await reranked).postData()!).variables).toMatchObject({ topK: 3, rerank: true, candidates: 12 });
    await expect.poll(() => page.locator(".summary").textContent(), SLOW).toContain("exact EK-FAC re-ranking from 12 candidates");
    await expect
      .poll(() => page.locator('[data-testid="hit"] .score').evaluateAll((items) => items.map((i) => i.getAttribute("data-scored-by"))), SLOW)
      .toEqual(["EXACT", "EXACT", "EXACT"]);
    expect(await page.locator('[data-testid="hit"] .approx').count()).toBe(3);
  });

  it("empties the prompt and completion when the input switches to token ids", async () => {
    await page.goto(`${server.url}/`);
    await page.getByLabel("token ids").check();
    expect([await page.getByLabel("Prompt").inputValue(), await page.getByLabel("Completion").inputValue()]).toEqual(["", ""]);
  });

  it("opens a hit's whole sequence, and exports the hits as CSV and JSON", async () => {
    await page.goto(`${server.url}/`);
    await page.getByLabel("Top k").fill(String(TOP_K));
    await page.getByRole("button", { name: "Run" }).click();
    await page
      .locator('[data-testid="hit"]')
      .nth(TOP_K - 1)
      .waitFor(SLOW);
    const { influence } = await api<{
      influence: {
        hits: Array<{
          rank: number;
          score: number;
          scoredBy: string;
          approxScore: number;
          sequence: { id: string };
          layerScores: Array<{ layer: number; score: number }>;
        }>;
      };
    }>(
      `query($p: String, $c: String, $k: Int) { influence(prompt: $p, completion: $c, topK: $k) { hits { rank score scoredBy approxScore sequence { id } layerScores { layer score } } } }`,
      { p: DEMO_QUERIES[0].prompt, c: DEMO_QUERIES[0].completion, k: TOP_K },
    );

    const second = influence.hits[1].sequence.id;
    await page.locator(`[data-testid="hit"][data-sequence-id="${second}"]`).getByRole("button", { name: "Whole sequence" }).click();
    const view = page.locator('[data-testid="sequence-view"]');
    await view.locator('[data-testid="sequence-text"]').waitFor(SLOW);
    const { sequence } = await api<{ sequence: { text: string; documentId: string; offset: number; tokenCount: number } }>(
      `query($id: ID!) { sequence(id: $id) { text documentId offset tokenCount } }`,
      { id: second },
    );
    expect(await view.locator("h2").textContent()).toBe(`Sequence ${second}`);
    expect(await view.locator('[data-testid="sequence-text"]').textContent()).toBe(sequence.text);
    expect(await view.locator('[data-testid="sequence-meta"]').textContent()).toBe(
      `document ${sequence.documentId}, tokens ${sequence.offset} to ${sequence.offset + sequence.tokenCount - 1} (${sequence.tokenCount} tokens)`,
    );

    const saved = async (button: string) => {
      const download = page.waitForEvent("download");
      await page.getByRole("button", { name: button }).click();
      return readFile((await (await download).path())!, "utf8");
    };
    const json = JSON.parse(await saved("Export JSON")) as {
      hits: Array<{ rank: number; id: string; score: number; scoredBy: string; approxScore: number; layerScores: unknown }>;
    };
    expect(influence.hits.map((h) => h.scoredBy)).toEqual(influence.hits.map(() => "SKETCH"));
    expect(json.hits.map((h) => [h.rank, h.id, h.score, h.scoredBy, h.approxScore, h.layerScores])).toEqual(
      influence.hits.map((h) => [h.rank, h.sequence.id, h.score, "sketch", h.approxScore, h.layerScores]),
    );
    const csv = (await saved("Export CSV"))
      .trimEnd()
      .split("\r\n")
      .map((line) => line.split(","));
    const layers = influence.hits[0].layerScores.map((l) => l.layer);
    expect(csv[0]).toEqual(["rank", "id", "score", "scored_by", "approx_score", ...layers.map((l) => `layer_${l}`)]);
    expect(csv.slice(1).map((row) => row.map((cell, i) => (i === 1 || i === 3 ? cell : Number(cell))))).toEqual(
      influence.hits.map((h) => [h.rank, h.sequence.id, h.score, "sketch", h.approxScore, ...h.layerScores.map((l) => l.score)]),
    );
    expect(network.external()).toEqual([]);
  });

  it("opens a hit's what-if view: the hit beside its word-order variants and an edited text, scored as the API scores them", async () => {
    await page.goto(`${server.url}/`);
    await page.getByLabel("Prompt").fill(PROMPT);
    await page.getByLabel("Completion").fill(COMPLETION);
    await page.getByLabel("Top k").fill(String(TOP_K));
    // Re-ranked, so that the hit list shows the exact score the what-if view scores again.
    await page.getByLabel("Re-rank exactly").check();
    await page.getByRole("button", { name: "Run" }).click();
    const first = page.locator('[data-testid="hit"]').first();
    await first.waitFor(SLOW);
    expect(await first.locator(".score").getAttribute("data-scored-by")).toBe("EXACT");
    const id = (await first.getAttribute("data-sequence-id"))!;
    await first.getByRole("button", { name: "What if…" }).click();

    type Scored = { kind: string; text: string; score: number; change: number | null; tokenScores: Array<{ position: number; score: number }> };
    const scoreSequences = (variables: object) =>
      api<{ scoreSequences: { original: { score: number; tokenScores: Array<{ position: number; score: number }> }; sequences: Scored[] } }>(
        `query($p: String, $c: String, $id: ID, $s: [String!], $v: Boolean) { scoreSequences(prompt: $p, completion: $c, compareWith: $id, sequences: $s, ` +
          "variants: $v) { original { score tokenScores { position score } } sequences { kind text score change tokenScores { position score } } } }",
        { p: PROMPT, c: COMPLETION, id, ...variables },
      );
    const { scoreSequences: expected } = await scoreSequences({ v: true });
    expect(expected.sequences.length).toBeGreaterThan(0);
    const view = page.locator('[data-testid="what-if"]');
    const cards = view.locator('[data-testid="what-if-card"]');
    await expect.poll(() => cards.count(), SLOW).toBe(1 + expected.sequences.length);
    const shown = () =>
      cards.evaluateAll((items) =>
        items.map((item) => ({
          kind: item.getAttribute("data-kind"),
          score: Number(item.getAttribute("data-score")),
          tokens: Array.from(item.querySelectorAll(".token")).map((t) => [Number(t.getAttribute("data-position")), Number(t.getAttribute("data-score"))]),
        })),
      );
    const before = await shown();
    const asShown = (s: { score: number; tokenScores: Array<{ position: number; score: number }> }) => ({
      score: s.score,
      tokens: s.tokenScores.map((t) => [t.position, t.score]),
    });
    expect(before).toEqual([{ kind: "ORIGINAL", ...asShown(expected.original) }, ...expected.sequences.map((v) => ({ kind: v.kind, ...asShown(v) }))]);
    // The hit's own score, as the hit list shows it.
    expect(before[0].score).toBeCloseTo(Number(await first.getAttribute("data-score")), 6);

    // Start from a variant, edit it, and score the edit: a new card, scored as the API scores that text.
    const editor = view.getByLabel("Edited text");
    await cards.nth(1).getByRole("button", { name: "Edit this" }).click();
    expect(await editor.inputValue()).toBe(expected.sequences[0].text);
    const edited = `${expected.sequences[0].text} And then some.`;
    await editor.fill(edited);
    await view.getByRole("button", { name: "Score this text" }).click();
    await expect.poll(() => cards.count(), SLOW).toBe(2 + expected.sequences.length);
    const { scoreSequences: scoredEdit } = await scoreSequences({ s: [edited] });
    const last = cards.last();
    expect(await last.getAttribute("data-kind")).toBe("GIVEN");
    expect(Number(await last.getAttribute("data-score"))).toBeCloseTo(scoredEdit.sequences[0].score, 6);
    expect(Number(await last.getAttribute("data-change"))).toBeCloseTo(scoredEdit.sequences[0].change!, 6);

    // Bad input: the server's message, word for word.
    await editor.fill("x");
    await view.getByRole("button", { name: "Score this text" }).click();
    await expect.poll(() => view.getByRole("alert").textContent(), SLOW).toContain("BAD_USER_INPUT: sequences[0] is 1 token");
    await page.screenshot({ path: path.join(path.dirname(SCREENSHOT), "what-if.png"), fullPage: true });
    expect(network.external()).toEqual([]);
  });

  it("compares the two indexes' hits side by side, with their layer bars and the overlap the API computes", async () => {
    await page.goto(`${server.url}/`);
    await page.getByLabel("Prompt").fill(PROMPT);
    await page.getByLabel("Completion").fill(COMPLETION);
    await page.getByLabel("Top k").fill(String(TOP_K));
    await page.getByRole("button", { name: "Run" }).click();
    const view = page.getByRole("region", { name: "compare indexes" });
    await view.waitFor(SLOW);
    expect(await view.locator("select").evaluateAll((selects) => selects.map((s) => (s as HTMLSelectElement).value))).toEqual(["gpt2", "pythia"]);
    await view.getByRole("button", { name: "Compare" }).click();
    const columns = view.locator('[data-testid="comparison-column"]');
    await expect.poll(() => columns.count(), SLOW).toBe(2);

    type Compared = {
      results: Array<{
        index: string;
        hits: Array<{ score: number; tokenOverlap: number; sequence: { id: string } }>;
        layerShares: Array<{ layer: number; share: number }>;
      }>;
      overlaps: Array<{ count: number; jaccard: number; ids: string[]; rankCorrelation: number | null }>;
    };
    const { compareInfluence } = await api<{ compareInfluence: Compared }>(
      `query($p: String, $c: String, $k: Int) { compareInfluence(indexes: ["gpt2", "pythia"], prompt: $p, completion: $c, topK: $k) {
        results { index hits { score tokenOverlap sequence { id } } layerShares { layer share } }
        overlaps { count jaccard ids rankCorrelation } } }`,
      { p: PROMPT, c: COMPLETION, k: TOP_K },
    );
    const shown = await columns.evaluateAll((items) =>
      items.map((item) => ({
        index: item.getAttribute("data-index"),
        hits: Array.from(item.querySelectorAll('[data-testid="comparison-hit"]')).map((h) => ({
          id: h.getAttribute("data-sequence-id"),
          score: Number(h.getAttribute("data-score")),
          tokenOverlap: Number(h.getAttribute("data-token-overlap")),
          common: h.classList.contains("common"),
        })),
        bars: Array.from(item.querySelectorAll('[data-testid="layer-bars"] li')).map((b) => ({
          layer: Number(b.getAttribute("data-layer")),
          share: Number(b.getAttribute("data-share")),
          width: (b.querySelector(".bar") as HTMLElement).style.width,
        })),
      })),
    );
    const [overlap] = compareInfluence.overlaps;
    expect(shown.map((c) => c.index)).toEqual(["gpt2", "pythia"]);
    for (const [i, result] of compareInfluence.results.entries()) {
      // Each column lists what influence answers on its index alone.
      const { influence } = await api<{ influence: { hits: Array<{ sequence: { id: string } }> } }>(
        `query($i: String, $p: String, $c: String, $k: Int) { influence(index: $i, prompt: $p, completion: $c, topK: $k) { hits { sequence { id } } } }`,
        { i: result.index, p: PROMPT, c: COMPLETION, k: TOP_K },
      );
      expect(shown[i].hits.map((h) => h.id)).toEqual(influence.hits.map((h) => h.sequence.id));
      expect(shown[i].hits).toEqual(
        result.hits.map((h) => ({ id: h.sequence.id, score: h.score, tokenOverlap: h.tokenOverlap, common: overlap.ids.includes(h.sequence.id) })),
      );
      expect(shown[i].bars.map((b) => [b.layer, b.share])).toEqual(result.layerShares.map((l) => [l.layer, l.share]));
      for (const bar of shown[i].bars) expect(Number.parseFloat(bar.width)).toBeCloseTo(100 * Math.abs(bar.share), 1);
    }
    const summary = view.locator('[data-testid="overlap"]');
    expect(Number(await summary.getAttribute("data-count"))).toBe(overlap.count);
    expect(Number(await summary.getAttribute("data-jaccard"))).toBe(overlap.jaccard);
    expect(await summary.textContent()).toMatch(new RegExp(`^${overlap.count} sequences? in both top lists · Jaccard ${overlap.jaccard.toFixed(3)}`));
    await page.screenshot({ path: path.join(path.dirname(SCREENSHOT), "comparison.png"), fullPage: true });
    expect(network.external()).toEqual([]);
  });

  it("opens the comparison from a link (?compare=A,B, as npm run demo -- --compare prints it): the first question, compared at once", async () => {
    await page.goto(`${server.url}/?compare=pythia,gpt2`);
    const view = page.getByRole("region", { name: "compare indexes" });
    const columns = view.locator('[data-testid="comparison-column"]');
    await expect.poll(() => columns.count(), SLOW).toBe(2);
    expect(await page.getByLabel("Prompt").inputValue()).toBe(DEMO_QUERIES[0].prompt);
    expect(await view.locator("select").evaluateAll((selects) => selects.map((s) => (s as HTMLSelectElement).value))).toEqual(["pythia", "gpt2"]);
    const { compareInfluence } = await api<{ compareInfluence: { results: Array<{ index: string; hits: Array<{ sequence: { id: string } }> }> } }>(
      `query($p: String, $c: String) { compareInfluence(indexes: ["pythia", "gpt2"], prompt: $p, completion: $c, topK: 10) { results { index hits { sequence { id } } } } }`,
      { p: DEMO_QUERIES[0].prompt, c: DEMO_QUERIES[0].completion },
    );
    const shown = await columns.evaluateAll((items) =>
      items.map((item) => ({
        index: item.getAttribute("data-index"),
        ids: Array.from(item.querySelectorAll('[data-testid="comparison-hit"]')).map((h) => h.getAttribute("data-sequence-id")),
      })),
    );
    expect(shown).toEqual(compareInfluence.results.map((r) => ({ index: r.index, ids: r.hits.map((h) => h.sequence.id) })));

    // A link naming an index the server does not have says which.
    await page.goto(`${server.url}/?compare=gpt2,nope`);
    await expect.poll(() => view.getByRole("alert").textContent(), SLOW).toContain('"nope"');
    // Let the link's own question finish before the next test (or the server's close) interrupts it.
    await expect.poll(() => page.locator('[data-testid="hit"]').count(), SLOW).toBeGreaterThan(0);
    expect(network.external()).toEqual([]);
  });

  it("browses and searches the corpus, and opens a sequence from it", async () => {
    await page.goto(`${server.url}/`);
    const corpus = page.getByRole("region", { name: "corpus" });
    const ids = () => corpus.locator('[data-testid="corpus-sequence"]').evaluateAll((items) => items.map((i) => i.getAttribute("data-sequence-id")));
    type Page = { sequences: { totalCount: number; edges: Array<{ node: { id: string; text: string } }> } };
    const listing = (search: string | null, first: number) =>
      api<Page>(`query($s: String, $n: Int) { sequences(search: $s, first: $n) { totalCount edges { node { id text } } } }`, { s: search, n: first });

    await corpus.getByRole("button", { name: "Search" }).click();
    const all = await listing(null, 20);
    await expect.poll(ids, SLOW).toEqual(all.sequences.edges.slice(0, 10).map((e) => e.node.id));
    expect(await corpus.locator('[data-testid="corpus-count"]').textContent()).toBe(`${all.sequences.totalCount} sequences`);
    await corpus.getByRole("button", { name: "Next page" }).click();
    await expect.poll(ids, SLOW).toEqual(all.sequences.edges.slice(10, 20).map((e) => e.node.id));

    // A word of one sequence's text: the page lists what the API finds for it.
    const word = all.sequences.edges[3].node.text.match(/[A-Za-z]{6,}/)![0];
    const found = await listing(word, 10);
    expect(found.sequences.totalCount).toBeGreaterThan(0);
    expect(found.sequences.totalCount).toBeLessThan(all.sequences.totalCount);
    await corpus.getByLabel("Search the corpus").fill(word);
    await corpus.getByRole("button", { name: "Search" }).click();
    await expect.poll(ids, SLOW).toEqual(found.sequences.edges.map((e) => e.node.id));
    await corpus.locator('[data-testid="corpus-sequence"]').first().click();
    const view = page.locator('[data-testid="sequence-view"]');
    await expect.poll(() => view.locator('[data-testid="sequence-text"]').textContent(), SLOW).toBe(found.sequences.edges[0].node.text);
    expect(network.external()).toEqual([]);
  });
});
