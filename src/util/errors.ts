/**
 * An error caused by something the user supplied (a file, a flag, a query): its message is meant
 * to be shown as is, and names the file or input and what is wrong with it.
 */
export class InputError extends Error {
  override readonly name = "InputError";
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Message of any thrown value, for logs and CLI output. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
