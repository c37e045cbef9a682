import { InputError } from "../util/errors.js";
import { containsPattern, isUniqueViolation } from "./sql.js";
import type { Database, Queryable } from "./types.js";
import { INT4_MAX, requireInt, requireStorableText, requireText } from "./validate.js";

export interface Sequence {
  corpusId: number;
  /** 0-based position in corpus order; also the sequence's label in the HNSW index. */
  ordinal: number;
  /** The document id, plus `#<offset>` when the document was split into windows. */
  externalId: string;
  documentId: number;
  /** The JSONL `id` of the sequence's document. */
  documentExternalId: string;
  /** Position of the sequence's first token in its document. */
  tokenOffset: number;
  /** null when the corpus gave token ids only. */
  text: string | null;
  tokenCount: number;
}

export interface NewSequence {
  ordinal: number;
  externalId: string;
  documentExternalId: string;
  tokenOffset: number;
  text: string | null;
  tokenIds: number[];
}

export interface SequencePage {
  edges: { cursor: string; node: Sequence }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

export const MAX_PAGE_SIZE = 1000;
const MAX_SEARCH_LENGTH = 1000;

// Token ids are left out (getTokenIdsByOrdinals reads them when asked): a default query's hits
// need their texts, and on the demo index the token ids made their look-up half as slow again.
const SEQUENCE_COLUMNS = `
  s.corpus_id AS "corpusId", s.ordinal, s.external_id AS "externalId", s.document_id AS "documentId",
  d.external_id AS "documentExternalId", s.token_offset AS "tokenOffset", s.text, s.token_count AS "tokenCount"`;
const FROM_SEQUENCES = `FROM sequences s JOIN documents d ON d.id = s.document_id`;

/**
 * Stores a batch of sequences of one corpus (and their documents), in one transaction. Ordinals
 * already stored are skipped, so a resumed ingest can resend a batch without duplicating rows.
 * Returns how many sequences were new. Send batches of about a thousand.
 */
export async function insertSequences(db: Database, corpusId: number, batch: readonly NewSequence[]): Promise<number> {
  requireInt("corpus id", corpusId, 1, INT4_MAX);
  if (batch.length === 0) return 0;
  const rows = batch.map(validateNewSequence);
  const ordinals = new Set(rows.map((r) => r.ordinal));
  if (ordinals.size !== rows.length) throw new InputError("a batch of sequences repeats an ordinal");
  const documentExternalIds = [...new Set(rows.map((r) => r.document_external_id))];
  try {
    return await db.transaction(async (tx) => {
      // Separate statement so that the sequences' join below sees documents created here.
      await tx.query(
        `INSERT INTO documents (corpus_id, external_id) SELECT $1::integer, unnest($2::text[])
         ON CONFLICT (corpus_id, external_id) DO NOTHING`,
        [corpusId, documentExternalIds],
      );
      const inserted = await tx.query(
        `INSERT INTO sequences (corpus_id, ordinal, external_id, document_id, token_offset, text, token_ids)
         SELECT $1::integer, r.ordinal, r.external_id, d.id, r.token_offset, r.text, r.token_ids
         FROM jsonb_to_recordset($2::jsonb) AS r(ordinal integer, external_id text, document_external_id text,
                                                 token_offset integer, text text, token_ids integer[])
         JOIN documents d ON d.corpus_id = $1 AND d.external_id = r.document_external_id
         ON CONFLICT (corpus_id, ordinal) DO NOTHING`,
        [corpusId, JSON.stringify(rows)],
      );
      return inserted.rowCount;
    });
  } catch (err) {
    if (isUniqueViolation(err, "sequences_corpus_id_external_id_key")) {
      throw new InputError(`two sequences of corpus ${corpusId} have the same external id (${err.detail ?? err.message})`, { cause: err });
    }
    if ((err as { code?: string }).code === "23503") throw new InputError(`corpus ${corpusId} does not exist`, { cause: err });
    throw err;
  }
}

function validateNewSequence(s: NewSequence, i: number) {
  const at = `sequence ${i} of the batch`;
  if (!Array.isArray(s.tokenIds) || s.tokenIds.length === 0) throw new InputError(`${at}: tokenIds must be a non-empty array`);
  for (const id of s.tokenIds) requireInt(`${at}: token id`, id, 0, INT4_MAX);
  if (s.text !== null && typeof s.text !== "string") throw new InputError(`${at}: text must be a string or null`);
  return {
    ordinal: requireInt(`${at}: ordinal`, s.ordinal, 0, INT4_MAX),
    external_id: requireText(`${at}: externalId`, s.externalId),
    document_external_id: requireText(`${at}: documentExternalId`, s.documentExternalId),
    token_offset: requireInt(`${at}: tokenOffset`, s.tokenOffset, 0, INT4_MAX),
    text: s.text === null ? null : requireStorableText(`${at}: text`, s.text),
    token_ids: s.tokenIds,
  };
}

/**
 * Refreshes the planner's statistics after an ingest. PGlite has no autovacuum, so without this it
 * plans with default estimates; on a server it saves waiting for autoanalyze.
 */
export async function analyzeSequences(db: Queryable): Promise<void> {
  await db.query("ANALYZE documents, sequences");
}

export async function countSequences(db: Queryable, corpusId: number): Promise<number> {
  const { rows } = await db.query<{ n: number }>("SELECT count(*) AS n FROM sequences WHERE corpus_id = $1", [corpusId]);
  return rows[0].n;
}

/** Highest stored ordinal, or null if the corpus has no sequences yet (where a resumed ingest restarts). */
export async function maxOrdinal(db: Queryable, corpusId: number): Promise<number | null> {
  const { rows } = await db.query<{ max: number | null }>("SELECT max(ordinal) AS max FROM sequences WHERE corpus_id = $1", [corpusId]);
  return rows[0].max;
}

/**
 * The sequences at `ordinals`, in the same order, null where none exists: the shape a DataLoader
 * batch function returns. One round trip however many ordinals.
 */
export async function getSequencesByOrdinals(db: Queryable, corpusId: number, ordinals: readonly number[]): Promise<(Sequence | null)[]> {
  if (ordinals.length === 0) return [];
  for (const o of ordinals) requireInt("ordinal", o, 0, INT4_MAX);
  const { rows } = await db.query<Sequence>(
    `SELECT ${SEQUENCE_COLUMNS} ${FROM_SEQUENCES} WHERE s.corpus_id = $1 AND s.ordinal = ANY($2::integer[])`,
    [corpusId, [...new Set(ordinals)]],
    // Every influence query's hits: planned once per session.
    { name: "sequences-by-ordinals" },
  );
  const byOrdinal = new Map(rows.map((r) => [r.ordinal, r]));
  return ordinals.map((o) => byOrdinal.get(o) ?? null);
}

/**
 * The token ids of the sequences at `ordinals`, in the same order, null where none exists (a
 * DataLoader batch function's shape). They travel as JSON: PGlite's JS parser of integer[] values
 * took 2 of the 3 ms of a 10-sequence look-up on the demo index, JSON.parse a fraction of that.
 */
export async function getTokenIdsByOrdinals(db: Queryable, corpusId: number, ordinals: readonly number[]): Promise<(number[] | null)[]> {
  if (ordinals.length === 0) return [];
  for (const o of ordinals) requireInt("ordinal", o, 0, INT4_MAX);
  const { rows } = await db.query<{ ordinal: number; tokenIds: number[] }>(
    `SELECT ordinal, to_json(token_ids) AS "tokenIds" FROM sequences WHERE corpus_id = $1 AND ordinal = ANY($2::integer[])`,
    [corpusId, [...new Set(ordinals)]],
    { name: "token-ids-by-ordinals" },
  );
  const byOrdinal = new Map(rows.map((r) => [r.ordinal, r.tokenIds]));
  return ordinals.map((o) => byOrdinal.get(o) ?? null);
}

export async function getSequenceByExternalId(db: Queryable, corpusId: number, externalId: string): Promise<Sequence | null> {
  // No stored id holds a NUL (PostgreSQL text cannot), and sending one fails the query: none found.
  if (externalId.includes("\0")) return null;
  const { rows } = await db.query<Sequence>(`SELECT ${SEQUENCE_COLUMNS} ${FROM_SEQUENCES} WHERE s.corpus_id = $1 AND s.external_id = $2`, [
    corpusId,
    externalId,
  ]);
  return rows[0] ?? null;
}

/**
 * One page of a Relay connection over a corpus's sequences in ordinal order (keyset pagination:
 * `after` is the endCursor of the previous page). `search`, if given, keeps the sequences whose text
 * contains it, case-insensitively and literally (`%`, `_`, `\` are not wildcards).
 */
export async function listSequences(
  db: Queryable,
  args: { corpusId: number; first: number; after?: string | null; search?: string | null },
): Promise<SequencePage> {
  const first = requireInt("first", args.first, 1, MAX_PAGE_SIZE);
  const afterOrdinal = args.after == null ? -1 : decodeCursor(args.after);
  const params: unknown[] = [args.corpusId, afterOrdinal, first + 1];
  let searchClause = "";
  if (args.search != null && args.search !== "") {
    params.push(containsPattern(requireStorableText("search", args.search, MAX_SEARCH_LENGTH)));
    searchClause = `AND s.text ILIKE $4 ESCAPE '\\'`;
  }
  const { rows } = await db.query<Sequence>(
    `SELECT ${SEQUENCE_COLUMNS} ${FROM_SEQUENCES}
     WHERE s.corpus_id = $1 AND s.ordinal > $2 ${searchClause}
     ORDER BY s.ordinal LIMIT $3`,
    params,
  );
  const nodes = rows.slice(0, first);
  const edges = nodes.map((node) => ({ cursor: encodeCursor(node.ordinal), node }));
  return { edges, pageInfo: { hasNextPage: rows.length > first, endCursor: edges.at(-1)?.cursor ?? null } };
}

/** Ordinals of the corpus's sequences containing `tokenId`, ascending (served by the GIN index). */
export async function ordinalsContainingToken(db: Queryable, corpusId: number, tokenId: number): Promise<number[]> {
  requireInt("token id", tokenId, 0, INT4_MAX);
  const { rows } = await db.query<{ ordinal: number }>(
    "SELECT ordinal FROM sequences WHERE corpus_id = $1 AND token_ids @> ARRAY[$2::integer] ORDER BY ordinal",
    [corpusId, tokenId],
  );
  return rows.map((r) => r.ordinal);
}

export function encodeCursor(ordinal: number): string {
  return Buffer.from(`seq:${ordinal}`).toString("base64url");
}

export function decodeCursor(cursor: string): number {
  const match = /^seq:(\d{1,10})$/.exec(Buffer.from(cursor, "base64url").toString("utf8"));
  const ordinal = match ? Number(match[1]) : NaN;
  if (!(ordinal <= INT4_MAX)) throw new InputError(`invalid cursor ${JSON.stringify(cursor.slice(0, 40))}: pass an endCursor from a previous page`);
  return ordinal;
}
