/**
 * The database layer's public API (see db/README.md). Every function takes a `DbHandle` or a
 * drizzle database / transaction first; ops open their own transaction (nested in the caller's
 * when given a transaction).
 */
export {
  openDb,
  dbOf,
  asDbUnavailable,
  isDbUnavailableError,
  sqlStateOf,
  DbOutageLog,
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
  countSelection,
  getJobHistory,
  getJobParameters,
  getJobHeartbeats,
  MAX_HEARTBEATS,
  type JobRow,
  type JobFilter,
  type JobScope,
  type HistoryRow,
  type HeartbeatRow,
} from './queries/jobs.js';

// Bulk actions
export {
  killJobs,
  rescheduleJobs,
  deleteJobs,
  bulkAction,
  type BulkAction,
  type BulkOutcome,
  type BulkSelection,
  type BulkResult,
  type ActionOptions,
} from './ops/job-actions.js';

// Matching, explanations, fair share
export {
  matchJob,
  explainResource,
  explainJob,
  pilotResource,
  type MatchedJob,
  type ExplainResource,
  type ExplainJob,
  type ExplainedTaskQueue,
  type ExplainedQueue,
  type BanState,
} from './ops/match.js';
export { recomputeSharePriorities, setGroupShare } from './ops/shares.js';
export { findFittingTaskQueues, countWaitingJobsFor } from './queries/match.js';
export {
  getTaskQueues,
  taskQueueKey,
  DEFAULT_GROUP_SHARE,
  listGroupShares,
  type TaskQueueRow,
  type GroupRef,
  type GroupShareRow,
} from './queries/task-queues.js';

// Registry
export {
  upsertSite,
  setSiteBanned,
  upsertComputingElement,
  setComputingElementBanned,
  upsertCeQueue,
  listCeQueues,
  getCeQueue,
  getBans,
  registeredSiteNames,
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
  jobSandboxesOf,
  storeSandboxChunks,
  importSandboxChunks,
  sandboxesWithoutChunks,
  sandboxChunking,
  sandboxChunk,
  SANDBOX_CHUNK_BYTES,
  type SandboxChunking,
  type UnchunkedSandbox,
  type SandboxRow,
  type SandboxOwner,
} from './queries/sandboxes.js';

// Application templates
export {
  listAppTemplates,
  getAppTemplate,
  upsertAppTemplate,
  insertAppTemplateIfMissing,
  deleteAppTemplate,
  type AppTemplateRow,
  type AppTemplateSource,
  type NewAppTemplate,
} from './queries/applications.js';

// Identity
export { getOrCreateSigningKey, type SigningKey } from './ops/signing-key.js';

// Pilots and what running jobs report
export {
  createPilots,
  setPilotReferences,
  findPilot,
  getPilotBinding,
  type PilotBinding,
  listPilots,
  updatePilots,
  registerPilot,
  appendPilotLogs,
  getPilotLogs,
  pilotCountsByQueue,
  type PilotRow,
  type NewPilot,
  type PilotFilter,
  type PilotUpdate,
  type Registration,
  type PilotLogLine,
} from './queries/pilots.js';
export {
  reportJobStatus,
  recordHeartbeat,
  recordHeartbeats,
  getJobTokenState,
  jobTokenDead,
  takeJobCommands,
  setJobParameters,
  pendingCommandsOfJobs,
  returnJobCommands,
  type JobReport,
  type JobReportResult,
  type HeartbeatItem,
  type HeartbeatResult,
} from './ops/job-reports.js';

// Token revocation
export {
  insertRevocation,
  revocationsAfter,
  listRevocations,
  deleteExpiredRevocations,
  REVOCATION_ID_MARGIN,
  type RevocationRow,
  type NewRevocation,
} from './queries/revocations.js';

// Agents
export {
  takeLease,
  tryTakeLease,
  releaseLease,
  listLeases,
  MAX_PERIOD_AHEAD_SECONDS,
  type LeaseFor,
  type LeaseRow,
  type TakenLease,
  type TickRecord,
} from './queries/agent-leases.js';
export {
  sweepStalledJobs,
  markStalledJobs,
  rescheduleJobsOfGonePilots,
  failLongStalledJobs,
  rescheduleStuckMatchedJobs,
  STALLED_JOBS_SOURCE,
  STALLED_MINOR,
  type StalledJobsOptions,
  type StalledJobsResult,
  type RescheduleOutcome,
} from './ops/stalled-jobs.js';
export {
  cleanJobs,
  deleteExpiredJobs,
  removeDeletedJobs,
  removeUnusedSandboxes,
  purgeHeartbeats,
  JOB_CLEANING_SOURCE,
  type JobCleaningOptions,
  type JobCleaningResult,
} from './ops/job-cleaning.js';
export {
  listPilotsToPoll,
  applyPilotStatusChanges,
  abortUnknownPilots,
  deleteSilentPilots,
  pilotsFinishedSince,
  type PilotOnCe,
  type PilotStatusChange,
  type EndedPilot,
} from './ops/pilot-status.js';

// Site registry and CE health
export {
  applySiteRegistry,
  siteStatus,
  queueHealth,
  pauseQueue,
  clearQueuePause,
  type ApplyResult,
  type QueueStatus,
  type QueueHealth,
} from './ops/site-registry.js';

// Metrics (the gauges of /metrics)
export { readMetricsGauges, readPilotsEnded, type MetricsGauges, type PilotsEnded } from './queries/metrics.js';

// Accounting
export {
  recordFinishedJobs,
  accountingReport,
  ACCOUNTING_GROUPINGS,
  type AccountingGrouping,
  type AccountingRow,
} from './ops/accounting.js';

// Quotas and usage (jobs waiting and running, CPU of the day and week, against shares)
export { usageReport, type UsageReport, type UsageOptions, type GroupUsage, type UserUsage, type UsedFigures } from './queries/usage.js';

// Notices between processes (LISTEN/NOTIFY on PostgreSQL, in-process on PGlite)
export {
  openNoticeBus,
  localNoticeBus,
  parseNotice,
  encodeNotice,
  taskQueuesOfJobs,
  NOTICE_CHANNEL,
  MAX_IDS_PER_NOTICE,
  type Notice,
  type NoticeBus,
  type NoticeJobAction,
  type NoticeListener,
  type NoticeLog,
  type NoticeStats,
} from './notices.js';

// Change feed (the event stream)
export {
  latestJobHistoryId,
  jobHistorySince,
  jobHistoryByIds,
  currentJobStates,
  databaseNow,
  pilotsChangedSince,
  siteStates,
  type JobHistoryChange,
  type JobStateNow,
  type PilotChange,
  type SiteState,
} from './queries/changes.js';
