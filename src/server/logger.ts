/** Where the server reports what clients do not see: failures of its own, and warnings. */
export interface ServerLogger {
  warn(message: string): void;
  error(message: string): void;
}

export const consoleLogger: ServerLogger = {
  warn: (message) => console.warn(message),
  error: (message) => console.error(message),
};
