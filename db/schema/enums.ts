import { pgEnum } from 'drizzle-orm/pg-core';
import { JOB_STATES } from '../../core/job-states.js';

/** The SQL enum is derived from the one list of states in core/. */
export const jobStatus = pgEnum('job_status', JOB_STATES as unknown as [string, ...string[]]);
