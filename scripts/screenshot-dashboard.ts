/**
 * Makes the README's pictures: the dashboard of a running server (default the demo's,
 * http://127.0.0.1:4000) in headless Chromium after the README's first demo query, and the
 * what-if view of its top hit.
 *
 *   npx tsx scripts/screenshot-dashboard.ts [URL] [docs/dashboard.png] [docs/what-if.png]
 */
import path from "node:path";
import { launchChromium } from "../support/browser.js";
import { DEMO_QUERIES } from "./demo-queries.js";
import { REPO_ROOT } from "./demo-index.js";

const url = process.argv[2] ?? "http://127.0.0.1:4000";
const out = path.resolve(process.argv[3] ?? path.join(REPO_ROOT, "docs/dashboard.png"));
const whatIfOut = path.resolve(process.argv[4] ?? path.join(REPO_ROOT, "docs/what-if.png"));
const wait = { timeout: 120_000 };

const browser = await launchChromium();
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(`${url}/`);
  await page.locator('input[name="layer"]').first().waitFor(wait);
  await page.getByLabel("Prompt").fill(DEMO_QUERIES[0].prompt);
  await page.getByLabel("Completion").fill(DEMO_QUERIES[0].completion);
  await page.getByLabel("Top k").fill("6");
  await page.getByRole("button", { name: "Run" }).click();
  await page.locator('[data-testid="power-law"]').waitFor(wait);
  await page.locator('[data-testid="hit"]').nth(5).waitFor(wait);
  await page.screenshot({ path: out, fullPage: true });
  console.error(`wrote ${out}`);

  await page.locator('[data-testid="hit"]').first().getByRole("button", { name: "What if…" }).click();
  const whatIf = page.locator('[data-testid="what-if"]');
  await whatIf.locator('[data-testid="what-if-card"]').nth(1).waitFor(wait);
  await whatIf.screenshot({ path: whatIfOut });
  console.error(`wrote ${whatIfOut}`);
} finally {
  await browser.close();
}
