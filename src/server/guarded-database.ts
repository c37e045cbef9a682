import type { Database, StatementOptions } from "../db/index.js";
import { ServerError } from "./errors.js";

/** Socket-level failures (server down, restarting, unreachable). */
const NETWORK_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EPIPE", "EHOSTUNREACH", "ENETUNREACH", "ENOTFOUND", "EAI_AGAIN"]);
/** SQLSTATEs of a server that is shutting down, starting up or out of connections. */
const UNAVAILABLE_SQLSTATES = new Set(["57P01", "57P02", "57P03", "53300"]);
/** node-postgres reports a dropped or unusable connection by message only. */
const CONNECTION_MESSAGE = /Connection terminated|timeout exceeded when trying to connect|not queryable|Connection refused/i;

/** True when `err` says the database could not be reached, as opposed to a statement failing. */
function isConnectionFailure(err: unknown): boolean {
  const { code, message } = (err ?? {}) as { code?: unknown; message?: unknown };
  if (typeof code === "string" && (NETWORK_CODES.has(code) || UNAVAILABLE_SQLSTATES.has(code) || code.startsWith("08"))) return true;
  return typeof message === "string" && CONNECTION_MESSAGE.test(message);
}

function guard(err: unknown): never {
  if (!isConnectionFailure(err)) throw err;
  const detail = err instanceof Error ? err.message : String(err);
  throw new ServerError("DATABASE_UNAVAILABLE", `the database is unavailable (${detail}); retry when it is back`, { cause: err });
}

/**
 * `db` with connection failures turned into DATABASE_UNAVAILABLE errors. Reconnecting is the
 * Database's business (pg.Pool opens a new connection for the next statement); this only makes
 * the failure of the statement in between explicit for clients.
 */
export function guardDatabase(db: Database): Database {
  return {
    kind: db.kind,
    location: db.location,
    query: <R extends object>(text: string, params?: readonly unknown[], options?: StatementOptions) => db.query<R>(text, params, options).catch(guard),
    transaction: (fn) => db.transaction(fn).catch(guard),
    close: () => db.close(),
  };
}
