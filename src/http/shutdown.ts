/** Ends a serving process on SIGINT or SIGTERM: says so, lets running requests finish, closes. */
import { errorMessage } from "../util/errors.js";

export const SHUTDOWN_SIGNALS = ["SIGINT", "SIGTERM"] as const;

/**
 * On the first signal, logs it, closes the server (draining running requests) and exits with 0
 * once closed; a second signal exits at once with 1, for a drain that takes too long.
 */
export function closeOnSignals(server: { close(): Promise<void> }, log: (line: string) => void): void {
  let closing = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (closing) {
      log(`${signal} received again: exiting without waiting for running requests`);
      process.exit(1);
    }
    closing = true;
    log(`${signal} received: draining running requests, then closing`);
    server.close().then(
      () => {
        log("closed");
        process.exit(0);
      },
      (err: unknown) => {
        log(`closing failed: ${errorMessage(err)}`);
        process.exit(1);
      },
    );
  };
  for (const signal of SHUTDOWN_SIGNALS) process.on(signal, onSignal);
}
