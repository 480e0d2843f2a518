/**
 * From database rows to API shapes. Routes answer these, never raw rows, so a column added to
 * the jobs table does not leak out of the API by accident.
 */
import type { JobRow } from '../db/index.js';
import type { JobState } from '../core/job-states.js';
import type { JobDetail, JobSummary } from '../api/index.js';

function iso(d: Date | string | null | undefined): string | null {
  if (d === null || d === undefined) return null;
  return (d instanceof Date ? d : new Date(d)).toISOString();
}

export function jobSummary(row: JobRow): JobSummary {
  return {
    id: Number(row.id),
    owner: row.owner,
    ownerGroup: row.ownerGroup,
    vo: row.vo,
    jobName: row.jobName,
    jobGroup: row.jobGroup,
    jobType: row.jobType,
    site: row.site,
    status: row.status as JobState,
    minorStatus: row.minorStatus,
    applicationStatus: row.applicationStatus,
    priority: row.userPriority,
    cpuTime: row.cpuTime,
    rescheduleCounter: row.rescheduleCounter,
    submittedAt: iso(row.submittedAt) as string,
    lastUpdateAt: iso(row.lastUpdateAt) as string,
    startExecAt: iso(row.startExecAt),
    endExecAt: iso(row.endExecAt),
    heartbeatAt: iso(row.heartbeatAt),
  };
}

export function jobDetail(row: JobRow): JobDetail {
  return {
    ...jobSummary(row),
    jdl: row.jdl,
    pilotId: row.pilotId === null ? null : Number(row.pilotId),
    bulkId: row.bulkId === null ? null : Number(row.bulkId),
    parameterNumber: row.parameterNumber,
    rescheduledAt: iso(row.rescheduledAt),
  };
}

export { iso };
