import { expect } from "vitest";
import { InputError } from "../../src/util/errors.js";

/** Expects an InputError whose message names `filePath` and matches `pattern`. */
export async function expectRefused(promise: Promise<unknown>, filePath: string, pattern: RegExp): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InputError);
  expect((err as Error).message).toContain(filePath);
  expect((err as Error).message).toMatch(pattern);
}
