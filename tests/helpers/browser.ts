import { existsSync } from "node:fs";
import { type Browser, type BrowserContext, chromium } from "playwright-core";

/** Debian's chromium package (`npx playwright install` cannot download here); CHROMIUM_PATH overrides it. */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const chromiumAvailable = existsSync(CHROMIUM_PATH);

/** Headless Chromium with its own fresh profile (Playwright makes a temporary one) and no background traffic. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}

const LOCAL_HOSTS = new Set(["127.0.0.1", "localhost", "[::1]"]);

/** Requests that stay on this machine: the test server, and data:/blob: URLs that never leave the page. */
export function isLocal(url: string): boolean {
  const { protocol, hostname } = new URL(url);
  return protocol === "data:" || protocol === "blob:" || LOCAL_HOSTS.has(hostname);
}

/**
 * Records every request of a browser context and refuses those leaving the machine, so that a
 * page needing a CDN fails visibly and the test can assert that none was even attempted.
 */
export async function guardNetwork(context: BrowserContext): Promise<{ requests: string[]; external(): string[] }> {
  const requests: string[] = [];
  context.on("request", (request) => void requests.push(request.url()));
  await context.route(
    (url) => !isLocal(url.href),
    (route) => route.abort("blockedbyclient"),
  );
  return { requests, external: () => requests.filter((url) => !isLocal(url)) };
}
