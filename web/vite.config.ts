import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/**
 * The web UI as static files in dist/web: the dashboard (index.html) and the GraphiQL playground
 * (playground/index.html), every asset bundled locally so that the pages work offline.
 */
export default defineConfig({
  root: here("."),
  // Absolute paths: the server answers unknown page paths with index.html (client-side routes),
  // where relative asset paths would resolve against the wrong folder.
  base: "/",
  // Monaco's workers are ES modules (GraphiQL's setup-workers/vite imports them with ?worker).
  worker: { format: "es" },
  build: {
    outDir: here("../dist/web"),
    emptyOutDir: true,
    // Monaco and GraphiQL are large by nature; the warning would fire on every build.
    chunkSizeWarningLimit: 5000,
    rolldownOptions: {
      input: { dashboard: here("index.html"), playground: here("playground/index.html") },
      // Named chunks for the libraries, so that sizes per page are readable in the build output.
      output: {
        codeSplitting: {
          groups: [
            { name: "react", test: /node_modules[\\/](react|react-dom|scheduler)[\\/]/ },
            { name: "echarts", test: /node_modules[\\/](echarts|zrender|tslib)[\\/]/ },
          ],
        },
      },
      onwarn(warning, warn) {
        // GraphiQL's dependencies mark modules "use client" (a React Server Components hint): meaningless here.
        if (warning.code !== "MODULE_LEVEL_DIRECTIVE") warn(warning);
      },
    },
  },
});
