/**
 * The API's answers as the CLI reads them (the CLI does not import services/; the shapes are
 * the ones in `services/schemas.ts` and the OpenAPI document at /docs/json).
 */
import type { JobState } from '../core/job-states.js';

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
