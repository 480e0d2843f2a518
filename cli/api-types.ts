/**
 * The API's answers as the CLI reads them (the CLI does not import services/; the shapes are
 * the ones in `services/schemas.ts` and the OpenAPI document at /docs/json).
 */
import type { JobState } from '../core/job-states.js';
import type { PilotState } from '../core/pilot-states.js';

export interface JobSummary {
  id: number;
  owner: string;
  ownerGroup: string;
  vo: string;
  jobName: string;
  jobGroup: string;
  jobType: string;
  site: string;
  status: JobState;
  minorStatus: string;
  applicationStatus: string;
  priority: number;
  cpuTime: number;
  rescheduleCounter: number;
  submittedAt: string;
  lastUpdateAt: string;
  startExecAt: string | null;
  endExecAt: string | null;
  heartbeatAt: string | null;
}

export interface HistoryEntry {
  status: JobState;
  minorStatus: string;
  applicationStatus: string;
  source: string;
  at: string;
}

export interface BulkResult {
  succeeded: number[];
  failed: { id: number; code: string; message: string }[];
}

export interface ListAnswer {
  jobs: JobSummary[];
  total: number;
  limit: number;
  offset: number;
}

export interface StatusAnswer {
  jobs: JobSummary[];
  notFound: number[];
}

export interface TokenAnswer {
  token: string;
  expiresAt: string;
  identity: { role: string; user: string; vo: string; group?: string };
}

/** `GET /api/jobs/:id/output`: the job's output sandboxes (each fetched from /api/sandboxes). */
export interface JobOutputAnswer {
  jobId: number;
  status: JobState;
  sandboxes: { sha256: string; size: number }[];
}

/** One pilot as `GET /api/pilots` lists it. */
export interface PilotSummary {
  id: number;
  stamp: string;
  reference: string | null;
  site: string;
  ce: string;
  ceType: string;
  queue: string;
  vo: string;
  status: PilotState;
  statusReason: string;
  /** DB12 score, null before registration. */
  benchmark: number | null;
  clockOffsetSeconds: number | null;
  currentJobId: number | null;
  jobsRun: number;
  exitCode: number | null;
  workDir: string | null;
  fsType: string | null;
  createdAt: string;
  lastUpdateAt: string;
}

export interface PilotListAnswer {
  pilots: PilotSummary[];
}

/**
 * `GET /api/pilots/:ref`: the pilot and the environment it reported at registration (empty
 * before): the fields of core/pilot-protocol.ts EnvironmentReport, plus `db12` (the benchmark's
 * details) and whatever else the pilot added.
 */
export interface PilotDetail extends PilotSummary {
  environment: Record<string, unknown>;
}

/** `GET /api/pilots/:ref/logs`: a page of the pilot's remote log, in order. */
export interface PilotLogAnswer {
  pilotId: number;
  status: PilotState;
  lines: { id: number; at: string; line: string }[];
}
