/** The `influence` command line. */
import "reflect-metadata";
import { createRequire } from "node:module";
import { Command, CommanderError } from "commander";
import { InputError } from "../util/errors.js";
import { registerBuild } from "./commands/build.js";
import { registerEvaluate } from "./commands/evaluate.js";
import { registerFit } from "./commands/fit.js";
import { registerQuery } from "./commands/query.js";
import { registerScore } from "./commands/score.js";
import { registerServe } from "./commands/serve.js";
import { registerWorker } from "./commands/worker.js";

/** Exit codes, documented in `influence --help` and the README. */
const EXIT_FAILURE = 1;
const EXIT_BAD_INPUT = 2;

const program = new Command()
  .name("influence")
  .description("Which training sequences made a language model say this? EK-FAC influence functions, indexed and served over GraphQL.")
  .version(createRequire(import.meta.url)("../../package.json").version, "-V, --version", "print the version")
  .addHelpText(
    "after",
    `
Exit codes: 0 success; ${EXIT_BAD_INPUT} bad input (an unknown command or option, a bad option value, a
missing or unreadable file, a query the model cannot take); ${EXIT_FAILURE} any other failure.`,
  )
  .showHelpAfterError()
  // An option after a subcommand is the subcommand's: `build status --database` is status's, not build's.
  .enablePositionalOptions()
  // Commander's own argument errors exit like every other bad input (the subcommands inherit this).
  .exitOverride();
registerFit(program);
registerScore(program);
registerBuild(program);
registerQuery(program);
registerServe(program);
registerWorker(program);
registerEvaluate(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  // Commander has already printed its message (and the usage); --help and --version end here with 0.
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : EXIT_BAD_INPUT);
  if (err instanceof InputError) {
    console.error(`influence: ${err.message}`);
    process.exit(EXIT_BAD_INPUT);
  }
  // An unexpected failure: its stack, for a bug report.
  console.error(`influence: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(EXIT_FAILURE);
}
