/**
 * The database layer's public API (see db/README.md). Every function takes a `DbHandle` or a
 * drizzle database / transaction first; ops open their own transaction (nested in the caller's
 * when given a transaction).
 */
export {
  openDb,
  dbOf,
  asDbUnavailable,
  pingDb,
  redactUrl,
  migrationsFolder,
  type Db,
  type DbHandle,
  type DbOrHandle,
  type OpenDbOptions,
  type Schema,
} from './open-db.js';

// Submission
export { submitJobs, type SubmitOptions } from './ops/submit.js';

// Reads
export {
  getJobs,
  listJobs,
  countJobsByStatus,
  getJobHistory,
  getJobParameters,
  type JobRow,
  type JobFilter,
  type JobScope,
  type HistoryRow,
} from './queries/jobs.js';

// Bulk actions
export { killJobs, rescheduleJobs, deleteJobs, type BulkResult, type ActionOptions } from './ops/job-actions.js';

// Matching, explanations, fair share
export {
  matchJob,
  explainResource,
  explainJob,
  type MatchedJob,
  type ExplainResource,
  type ExplainJob,
  type ExplainedTaskQueue,
  type ExplainedQueue,
  type BanState,
} from './ops/match.js';
export { recomputeSharePriorities, setGroupShare } from './ops/shares.js';
export { findFittingTaskQueues } from './queries/match.js';
export {
  getTaskQueues,
  taskQueueKey,
  DEFAULT_GROUP_SHARE,
  type TaskQueueRow,
  type GroupRef,
} from './queries/task-queues.js';

// Registry
export {
  upsertSite,
  setSiteBanned,
  upsertComputingElement,
  setComputingElementBanned,
  upsertCeQueue,
  listCeQueues,
  type ComputingElementInput,
  type CeQueueInput,
  type CeQueueView,
} from './queries/registry.js';

// Sandboxes
export {
  recordSandbox,
  getSandbox,
  sandboxOwnedBy,
  sandboxesOwnedBy,
  jobUsesSandbox,
  assignSandboxes,
  type SandboxRow,
} from './queries/sandboxes.js';

// Identity
export { getOrCreateSigningKey, type SigningKey } from './ops/signing-key.js';
