import { AsyncLocalStorage } from "node:async_hooks";
import type { Queryable, QueryRows, StatementOptions } from "./types.js";

/** A session that can run statements one after another (a pg.Client or pg.Pool, checked out or embedded). */
export interface Session {
  query(statement: string | { text: string; values?: unknown[]; name?: string }): Promise<{ rows: object[]; rowCount: number | null }>;
}

export async function runQuery<R extends object>(
  session: Session,
  text: string,
  params?: readonly unknown[],
  options?: StatementOptions,
): Promise<QueryRows<R>> {
  const values = params as unknown[] | undefined;
  const result = await session.query({ text, ...(values ? { values } : {}), ...(options?.name ? { name: options.name } : {}) });
  return { rows: result.rows as R[], rowCount: result.rowCount ?? 0 };
}

/**
 * Tracks which async call chains are inside a transaction of one database, so that a stray
 * `db.query` there fails loudly instead of running outside the transaction (pg.Pool) or waiting
 * forever for the transaction's own session (PGlite).
 */
export class TransactionScope {
  readonly #inside = new AsyncLocalStorage<true>();

  assertOutside(): void {
    if (this.#inside.getStore()) {
      throw new Error("db.query() called inside db.transaction(): run statements through the transaction's `tx` argument");
    }
  }

  /** BEGIN, fn, COMMIT on `session`; ROLLBACK and rethrow if fn or COMMIT fails. */
  async run<T>(session: Session, fn: (tx: Queryable) => Promise<T>): Promise<T> {
    let open = true;
    const tx: Queryable = {
      query: <R extends object>(text: string, params?: readonly unknown[], options?: StatementOptions) => {
        if (!open) return Promise.reject(new Error("transaction already finished: its `tx` can no longer be used"));
        return runQuery<R>(session, text, params, options);
      },
    };
    await session.query("BEGIN");
    try {
      const result = await this.#inside.run(true, () => fn(tx));
      open = false;
      await session.query("COMMIT");
      return result;
    } catch (err) {
      open = false;
      await session.query("ROLLBACK").catch(() => {
        // The session is broken (e.g. the server went away); the original error says more.
      });
      throw err;
    }
  }
}
