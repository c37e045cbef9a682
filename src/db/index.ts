// The data layer: open a database (PGlite or PostgreSQL), migrate it, read and write through it.
export { openDatabase, type OpenDatabaseOptions } from "./connect.js";
export type { Database, Queryable, QueryRows, StatementOptions } from "./types.js";
export { DirectoryLockedError, LOCK_FILE_NAME } from "../util/directory-lock.js";
export { migrate, loadMigrations, type Migration } from "./migrate.js";
export { upsertCorpus, getCorpus, type Corpus } from "./corpora.js";
export {
  insertSequences,
  analyzeSequences,
  countSequences,
  maxOrdinal,
  getSequencesByOrdinals,
  getTokenIdsByOrdinals,
  getSequenceByExternalId,
  listSequences,
  ordinalsContainingToken,
  MAX_PAGE_SIZE,
  type Sequence,
  type NewSequence,
  type SequencePage,
} from "./sequences.js";
export {
  startBuild,
  recordBuildPhase,
  finishBuild,
  reopenBuild,
  getBuild,
  latestBuild,
  planShards,
  markShardDone,
  listShards,
  type IndexBuild,
  type BuildShard,
  type BuildStatus,
} from "./builds.js";
export { logQuery, recentQueries, MAX_RECENT_QUERIES, type QueryLogEntry } from "./query-log.js";
export {
  planDistributedBuild,
  refuseUsedOutDir,
  getDistributedBuild,
  listDistributedBuilds,
  addBuildJobs,
  startBuildJob,
  finishBuildJob,
  failBuildJob,
  lockBuildStage,
  setBuildStage,
  unfinishedJobs,
  listBuildJobs,
  type DistributedBuild,
  type BuildJobRow,
  type BuildJobStatus,
  type NewBuildJob,
} from "./distributed-builds.js";
