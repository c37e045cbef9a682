import { expect } from "vitest";
import { InputError } from "../../src/util/errors.js";

/** The InputError that `promise` rejects with; fails the test if it resolves or rejects with something else. */
export async function refusal(promise: Promise<unknown>): Promise<InputError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(InputError);
  return err as InputError;
}

/** Expects an InputError whose message names `filePath` and matches `pattern`. */
export async function expectRefused(promise: Promise<unknown>, filePath: string, pattern: RegExp): Promise<void> {
  const err = await refusal(promise);
  expect(err.message).toContain(filePath);
  expect(err.message).toMatch(pattern);
}

/** Every item of an async iterable, in order. */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of items) all.push(item);
  return all;
}
