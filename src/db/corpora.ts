import { InputError } from "../util/errors.js";
import type { Queryable } from "./types.js";
import { requireText } from "./validate.js";

export interface Corpus {
  id: number;
  name: string;
  sourcePath: string;
  fingerprint: string;
  createdAt: Date;
}

const CORPUS_COLUMNS = `id, name, source_path AS "sourcePath", fingerprint, created_at AS "createdAt"`;

/**
 * Returns the corpus named `name`, creating it if new. An existing corpus must have the same
 * fingerprint (its stored sequences came from that content); its source path is updated, since a
 * moved file with the same content is the same corpus.
 */
export async function upsertCorpus(db: Queryable, corpus: { name: string; sourcePath: string; fingerprint: string }): Promise<Corpus> {
  const name = requireText("corpus name", corpus.name, 200);
  const sourcePath = requireText("corpus source path", corpus.sourcePath);
  const fingerprint = requireText("corpus fingerprint", corpus.fingerprint, 200);
  const { rows } = await db.query<Corpus>(
    `INSERT INTO corpora (name, source_path, fingerprint) VALUES ($1, $2, $3)
     ON CONFLICT (name) DO UPDATE SET source_path = EXCLUDED.source_path
       WHERE corpora.fingerprint = EXCLUDED.fingerprint
     RETURNING ${CORPUS_COLUMNS}`,
    [name, sourcePath, fingerprint],
  );
  if (rows.length === 1) return rows[0];
  const existing = await getCorpus(db, name);
  throw new InputError(
    `corpus "${name}" already exists with different content (fingerprint ${existing?.fingerprint}, now ${fingerprint}, ` +
      `from ${sourcePath}): index it under another name, or delete the old index`,
  );
}

export async function getCorpus(db: Queryable, name: string): Promise<Corpus | null> {
  const { rows } = await db.query<Corpus>(`SELECT ${CORPUS_COLUMNS} FROM corpora WHERE name = $1`, [name]);
  return rows[0] ?? null;
}
