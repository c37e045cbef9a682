import pg from "pg";
import { SESSION_TIME_ZONE, typeParsers } from "./pg-types.js";
import { runQuery, TransactionScope } from "./transaction.js";
import type { Database, Queryable, QueryRows, StatementOptions } from "./types.js";

export interface PoolOptions {
  /** Most connections held open at once (default 10). */
  max?: number;
  /**
   * Called when an idle connection breaks, e.g. the server restarted. The pool has already dropped
   * that connection and opens a new one on the next query; without a listener node-postgres' `error`
   * event would crash the process. Default: a one-line warning on stderr.
   */
  onConnectionError?: (err: Error) => void;
}

const warnOnStderr = (err: Error): void => {
  process.stderr.write(`warning: PostgreSQL connection lost (${err.message}); reconnecting on next query\n`);
};

/** `url` with its password replaced, for messages and logs. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "<unparsable database URL>";
  }
}

/** A PostgreSQL server reached through a pg.Pool. */
export class PoolDatabase implements Database {
  readonly kind = "postgres" as const;
  readonly location: string;
  readonly #pool: pg.Pool;
  readonly #scope = new TransactionScope();
  readonly #onConnectionError: (err: Error) => void;

  constructor(url: string, options: PoolOptions = {}) {
    this.location = redactUrl(url);
    this.#onConnectionError = options.onConnectionError ?? warnOnStderr;
    this.#pool = new pg.Pool({
      connectionString: url,
      max: options.max ?? 10,
      types: typeParsers,
      options: `-c TimeZone=${SESSION_TIME_ZONE}`,
      application_name: "influence-graph",
      keepAlive: true,
    });
    this.#pool.on("error", (err) => this.#onConnectionError(err));
  }

  async query<R extends object = Record<string, unknown>>(text: string, params?: readonly unknown[], options?: StatementOptions): Promise<QueryRows<R>> {
    this.#scope.assertOutside();
    return runQuery<R>(this.#pool, text, params, options);
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    this.#scope.assertOutside();
    const client = await this.#pool.connect();
    // A checked-out client has no pool listener: without this, a server restart during `fn` would
    // emit an unhandled `error` and crash the process. The failing statement reports it instead.
    const onError = (err: Error): void => this.#onConnectionError(err);
    client.on("error", onError);
    try {
      const result = await this.#scope.run(client, fn);
      client.removeListener("error", onError);
      client.release();
      return result;
    } catch (err) {
      client.removeListener("error", onError);
      // Discard the connection: after a failure its state (open transaction, broken socket) is unknown.
      client.release(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
  }

  close(): Promise<void> {
    return this.#pool.end();
  }
}
