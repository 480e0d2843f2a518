/**
 * Checks a JDL in the browser with the same code the services run (core/jdl): syntax,
 * parametric expansion and every attribute against the default limits. The services check
 * again with their own limits; this only spares the user a round trip.
 */
import { describeJobs } from '../../core/jdl/describe.js';
import { isWmsError, type JdlProblem } from '../../core/errors.js';
import { DEFAULT_JOB_LIMITS } from '../../core/job-model.js';

export interface JdlCheck {
  /** Jobs the JDL describes (0 when it has problems). */
  jobs: number;
  problems: JdlProblem[];
}

const PREVIEW_IDENTITY = { owner: 'preview', ownerGroup: 'preview', vo: 'preview' };

export function checkJdl(text: string): JdlCheck {
  if (text.trim() === '') return { jobs: 0, problems: [{ message: 'the JDL is empty', line: 1, column: 1 }] };
  try {
    return { jobs: describeJobs(text, PREVIEW_IDENTITY, DEFAULT_JOB_LIMITS).length, problems: [] };
  } catch (e) {
    if (isWmsError(e)) {
      const problems = (e.details as { problems?: JdlProblem[] } | undefined)?.problems;
      return { jobs: 0, problems: problems?.length ? problems : [{ message: e.message, line: 1, column: 1 }] };
    }
    return { jobs: 0, problems: [{ message: String(e), line: 1, column: 1 }] };
  }
}
