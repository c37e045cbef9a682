/** How a statement is sent. */
export interface StatementOptions {
  /**
   * Keep the statement parsed and planned in the session under this name, and reuse it there: for
   * the statements every request runs (planning was half of the hits' look-up on PGlite, 0.6 of
   * 1.3 ms). A name always goes with the same text.
   */
  name?: string;
}

/** Anything that runs one SQL statement: the database itself or an open transaction. */
export interface Queryable {
  query<R extends object = Record<string, unknown>>(text: string, params?: readonly unknown[], options?: StatementOptions): Promise<QueryRows<R>>;
}

export interface QueryRows<R> {
  rows: R[];
  /** Rows returned, inserted, updated or deleted (0 for statements that report none). */
  rowCount: number;
}

/**
 * The one interface the rest of the code uses, whether the data lives in embedded PGlite or on a
 * PostgreSQL server. Both implementations parse results with node-postgres' type parsers (see
 * pg-types.ts), so a row read from either has the same JavaScript types.
 */
export interface Database extends Queryable {
  readonly kind: "pglite" | "postgres";
  /** Where the data lives, for messages: the data directory, or the URL without its password. */
  readonly location: string;
  /**
   * Runs `fn` inside BEGIN/COMMIT on one session; rolls back and rethrows if it throws. Statements
   * must go through `tx`: calling the database's own `query` inside `fn` throws (on PGlite, which has
   * a single session, it would otherwise wait for the transaction forever).
   */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
