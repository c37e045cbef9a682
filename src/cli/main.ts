/** The `influence` command line. */
import "reflect-metadata";
import { Command } from "commander";
import { InputError } from "../util/errors.js";
import { registerBuild } from "./commands/build.js";
import { registerFit } from "./commands/fit.js";
import { registerQuery } from "./commands/query.js";
import { registerScore } from "./commands/score.js";
import { registerServe } from "./commands/serve.js";

const program = new Command()
  .name("influence")
  .description("Which training sequences made a language model say this? EK-FAC influence functions, indexed and served over GraphQL.")
  .showHelpAfterError();
registerFit(program);
registerScore(program);
registerBuild(program);
registerQuery(program);
registerServe(program);

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof InputError) {
    console.error(`influence: ${err.message}`);
    process.exit(2);
  }
  // Not rethrown: once the wasm backend is loaded, its uncaughtException handler rethrows the
  // error, so Node printed that handler's whole minified source line (100 kB) and exited with 7.
  console.error(`influence: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exit(1);
}
