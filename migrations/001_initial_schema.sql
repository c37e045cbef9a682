-- Initial schema. PostgreSQL 15 syntax and no extensions, so that it runs on Debian's stock
-- PostgreSQL 15 and on PGlite alike. Vectors are not stored here (files + HNSW index).
-- Timestamps are timestamptz throughout: node-postgres reads them as the same Date on any server.

CREATE TABLE corpora (
  id          integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name        text NOT NULL UNIQUE CHECK (name <> ''),
  source_path text NOT NULL,
  -- Hash of the corpus content: a resumed ingest must see the same data.
  fingerprint text NOT NULL CHECK (fingerprint <> ''),
  created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE documents (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  corpus_id   integer NOT NULL REFERENCES corpora (id) ON DELETE CASCADE,
  external_id text NOT NULL,              -- the JSONL `id`
  UNIQUE (corpus_id, external_id)
);

-- The unit of influence. `ordinal` is the 0-based position in corpus order and also the label of
-- the sequence's vector in the HNSW index.
CREATE TABLE sequences (
  corpus_id    integer NOT NULL REFERENCES corpora (id) ON DELETE CASCADE,
  ordinal      integer NOT NULL CHECK (ordinal >= 0),
  -- Shown to users: the document id, plus `#<offset>` when a long document was split into windows.
  external_id  text NOT NULL,
  document_id  bigint NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
  token_offset integer NOT NULL CHECK (token_offset >= 0),
  text         text,                      -- null when the corpus gave token ids only
  token_ids    integer[] NOT NULL CHECK (cardinality(token_ids) > 0 AND array_ndims(token_ids) = 1),
  token_count  integer NOT NULL GENERATED ALWAYS AS (cardinality(token_ids)) STORED,
  PRIMARY KEY (corpus_id, ordinal),
  UNIQUE (corpus_id, external_id)
);
CREATE INDEX sequences_document_id_idx ON sequences (document_id);
-- "Sequences containing token X" (token_ids @> ARRAY[X]) filters the vector search. fastupdate off:
-- the corpus is written once then read, and PGlite has no autovacuum to flush GIN's pending list,
-- which the planner costs so high that it chose a sequential scan (and it made the index 7x larger).
CREATE INDEX sequences_token_ids_gin ON sequences USING gin (token_ids) WITH (fastupdate = off);
-- Substring search on text (ILIKE) scans the corpus's rows: without pg_trgm no index serves it.

CREATE TABLE index_builds (
  id            integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  corpus_id     integer NOT NULL REFERENCES corpora (id) ON DELETE CASCADE,
  status        text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed', 'failed')),
  parameters    jsonb NOT NULL DEFAULT '{}',
  started_at    timestamptz NOT NULL DEFAULT now(),
  finished_at   timestamptz,
  phase_timings jsonb NOT NULL DEFAULT '{}',   -- seconds per phase, e.g. {"factors": 12.5}
  counts        jsonb NOT NULL DEFAULT '{}',   -- e.g. {"sequences": 1000, "tokens": 512000}
  error         text,
  CHECK ((status = 'running') = (finished_at IS NULL)),
  CHECK (error IS NULL OR status = 'failed')
);
CREATE INDEX index_builds_corpus_idx ON index_builds (corpus_id, started_at DESC);
-- Two builds writing one corpus's index at once would corrupt it.
CREATE UNIQUE INDEX index_builds_one_running ON index_builds (corpus_id) WHERE status = 'running';

-- Shards of a build's vectors, so that an interrupted build resumes at the first unfinished shard.
CREATE TABLE build_shards (
  build_id      integer NOT NULL REFERENCES index_builds (id) ON DELETE CASCADE,
  shard         integer NOT NULL CHECK (shard >= 0),
  first_ordinal integer NOT NULL CHECK (first_ordinal >= 0),
  last_ordinal  integer NOT NULL,
  status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'done')),
  vector_file   text,
  finished_at   timestamptz,
  PRIMARY KEY (build_id, shard),
  CHECK (last_ordinal >= first_ordinal),
  CHECK ((status = 'done') = (finished_at IS NOT NULL AND vector_file IS NOT NULL))
);

CREATE TABLE query_log (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  created_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
  parameters  jsonb NOT NULL,
  timings     jsonb NOT NULL DEFAULT '{}',   -- milliseconds per step
  top_hit_ids text[] NOT NULL DEFAULT '{}',  -- sequence external ids, best first
  error       text
);
CREATE INDEX query_log_newest_idx ON query_log (created_at DESC, id DESC);
