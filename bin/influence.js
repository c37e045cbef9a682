#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx: no build step between a clone and a run.
import { fileURLToPath } from "node:url";
import { register } from "tsx/esm/api";

// The project's tsconfig.json, wherever the command is run from: tsx otherwise reads the one in the
// working directory, and without experimentalDecorators `influence serve` failed to load its schema.
register({ tsconfig: fileURLToPath(new URL("../tsconfig.json", import.meta.url)) });
await import("../src/cli/main.ts");
