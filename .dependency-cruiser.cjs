/**
 * The pipeline: every folder of src/ in the order its stages build on each other. A module may
 * import its own folder and folders earlier in the list, never a later one.
 *
 * Where the order departs from the plain reading of the pipeline, the real dependencies decide:
 * - runtime (ONNX graph builder, sessions, execution providers, kernels on host arrays) before
 *   linalg: the large eigen-solvers' products run on it; the models' graphs are written and run
 *   with it, and it knows nothing of any model.
 * - workers (thread pool, its protocol, spawning .ts workers) is a foundation: the build's jobs
 *   and the server's engine both run on it, and it knows nothing of either.
 * - model before corpus: a corpus source is the sequences a model's tokenizer and context length
 *   make of a file (corpus/corpus-source.ts), so it needs the model's description.
 * - jobs (fit, score, build) after indexer and engine's peers: a job drives every stage; nothing
 *   but the CLI runs a job.
 * - server holds the query services (validation, influence/sequence/index services, errors,
 *   request context) that the GraphQL resolvers call; http assembles the HTTP server (Apollo and
 *   Express, middleware, health, metrics, `serve`) around the GraphQL schema, so it comes after
 *   graphql; cli comes last.
 */
const PIPELINE = [
  "util",
  "stats",
  "safetensors",
  "tokenizer",
  "runtime",
  "linalg",
  "workers",
  "db",
  "model",
  "corpus",
  "training",
  "ekfac",
  "projection",
  "indexer",
  "engine",
  "jobs",
  "server",
  "graphql",
  "http",
  "cli",
];

const alternatives = (folders) => `^src/(${folders.join("|")})/`;

/** A forbidden dependency, reported as an error. */
const forbid = (name, comment, from, to) => ({ name, severity: "error", comment, from, to });

module.exports = {
  forbidden: [
    forbid("no-circular", "Import cycles make the order of module initialisation matter and hide which stage owns what.", {}, { circular: true }),
    forbid(
      "src-folder-in-pipeline",
      "Every folder of src/ takes a place in PIPELINE (.dependency-cruiser.cjs), so that the order rules cover it.",
      { path: "^src/", pathNot: alternatives(PIPELINE) },
      {},
    ),
    ...PIPELINE.slice(0, -1).map((folder, i) =>
      forbid(
        `pipeline-${folder}`,
        `src/${folder}/ may import only folders earlier in the pipeline (${PIPELINE.slice(0, i).join(", ") || "none"}).`,
        { path: `^src/${folder}/` },
        { path: alternatives(PIPELINE.slice(i + 1)) },
      ),
    ),
    forbid(
      "src-imports-only-src",
      "The product never depends on its tests, benchmarks or their helpers.",
      { path: "^src/" },
      { path: "^(tests|scripts|support)/" },
    ),
    forbid(
      "support-imports-no-tests-or-scripts",
      "support/ holds what tests and benchmarks share: both may import it, it imports neither.",
      { path: "^support/" },
      { path: "^(tests|scripts)/" },
    ),
    forbid(
      "scripts-import-no-tests",
      "Benchmarks and tools share helpers with the tests through support/, not by importing tests/.",
      { path: "^scripts/" },
      { path: "^tests/" },
    ),
    forbid("not-to-unresolvable", "An import that resolves to nothing fails at run time.", {}, { couldNotResolve: true }),
  ],
  options: {
    doNotFollow: { path: "node_modules" },
    // Type-only imports count: a type from a later stage is a dependency on that stage all the same.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    enhancedResolveOptions: { exportsFields: ["exports"], conditionNames: ["import", "require", "node", "default"] },
  },
};
