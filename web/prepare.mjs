/**
 * `npm ci` runs the package's `prepare` script: build the web UI into dist/web so that
 * `influence serve` has its dashboard and playground. An install without dev dependencies
 * (`--omit=dev`, or NODE_ENV=production) has no Vite: say so and let the install succeed; the
 * server then serves GraphQL without the web UI.
 */
let vite;
try {
  vite = await import("vite");
} catch (err) {
  if (err?.code !== "ERR_MODULE_NOT_FOUND") throw err;
  console.warn("influence-graph: vite is not installed (dev dependencies omitted): the web UI is not built; run `npm run build:web` after a full install");
  process.exit(0);
}
await vite.build({ configFile: new URL("./vite.config.ts", import.meta.url).pathname, logLevel: "warn" });
