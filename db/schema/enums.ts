import { pgEnum } from 'drizzle-orm/pg-core';
import { JOB_STATES } from '../../core/job-states.js';
import { PILOT_STATES } from '../../core/pilot-states.js';

/** The SQL enums are derived from the one list of states of each machine in core/. */
export const jobStatus = pgEnum('job_status', JOB_STATES as unknown as [string, ...string[]]);
export const pilotStatus = pgEnum('pilot_status', PILOT_STATES as unknown as [string, ...string[]]);
