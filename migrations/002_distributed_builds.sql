-- Builds spread over worker processes through a job queue (`influence build --distributed`). The
-- queue itself (pg-boss, in its own schema) delivers and retries jobs; these tables hold what the
-- build needs to know: its plan, the stage it has reached, and every job's outcome and throughput.

CREATE TABLE distributed_builds (
  build_id integer PRIMARY KEY REFERENCES index_builds (id) ON DELETE CASCADE,
  -- The shared folder the workers write. One build per folder: two would overwrite each other.
  out_dir  text NOT NULL UNIQUE CHECK (out_dir <> ''),
  -- Model, corpus, parameters and queue settings (see src/jobs/distributed/plan.ts). json, not
  -- jsonb: the key order is kept, and the projection's settings are written into its file as read.
  plan     json NOT NULL,
  -- Index of the stage whose jobs are queued; a stage is queued when the one before is done.
  stage    integer NOT NULL DEFAULT 0 CHECK (stage >= 0)
);

CREATE TABLE build_jobs (
  build_id    integer NOT NULL REFERENCES distributed_builds (build_id) ON DELETE CASCADE,
  -- e.g. covariance-000003: also the name of the job's artifact, so a retry rewrites only its own.
  name        text NOT NULL CHECK (name <> ''),
  stage       integer NOT NULL CHECK (stage >= 0),
  phase       text NOT NULL,
  spec        jsonb NOT NULL,
  status      text NOT NULL DEFAULT 'queued' CHECK (status IN ('queued', 'running', 'done', 'failed')),
  attempts    integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  worker      text,
  started_at  timestamptz,
  finished_at timestamptz,
  sequences   integer NOT NULL DEFAULT 0,
  tokens      bigint NOT NULL DEFAULT 0,
  error       text,
  PRIMARY KEY (build_id, name),
  CHECK ((status = 'done') = (finished_at IS NOT NULL))
);
CREATE INDEX build_jobs_stage_idx ON build_jobs (build_id, stage, status);
