/**
 * One error type for the whole system and one catalogue of codes.
 *
 * Domain errors carry no HTTP status: the service edge maps each code to a status with an
 * exhaustive `Record<ErrorCode, number>`, so a new code forces a decision at compile time.
 * Match on `code`, never on `instanceof` across package boundaries.
 */

export const ERROR_CODES = [
  'WMS_JDL_SYNTAX', // the text is not a well-formed JDL (details: problems with line and column)
  'WMS_JDL_INVALID', // well-formed, but an attribute is missing, of the wrong type or out of range
  'WMS_JDL_PARAMETRIC', // parametric expansion failed (lengths differ, too many jobs, bad placeholder)
  'WMS_VALIDATION', // a request body or query string failed its schema
  'WMS_JOB_NOT_FOUND',
  'WMS_JOB_STATE', // the job's state does not allow the requested change
  'WMS_NO_MATCH', // no waiting job fits the resource description (not an error for the pilot)
  'WMS_SITE_BANNED',
  'WMS_SANDBOX_NOT_FOUND',
  'WMS_SANDBOX_CHECKSUM',
  'WMS_SANDBOX_TOO_LARGE',
  'WMS_PAYLOAD_TOO_LARGE', // a request body or a JDL is over its configured size limit
  'WMS_RATE_LIMITED', // too many requests from this caller: retry after the Retry-After seconds
  'WMS_AUTH_MISSING', // no token
  'WMS_AUTH_INVALID', // bad signature, expired, malformed
  'WMS_FORBIDDEN', // authenticated, but the role or ownership does not allow it
  'WMS_NOT_FOUND', // no such route or resource
  'WMS_CONFLICT',
  'WMS_JOB_NOT_HELD', // a job token of a match that no longer holds the job (rescheduled): stop its payload
  'WMS_DB_UNAVAILABLE', // the database cannot be reached: retry later
  'WMS_UNAVAILABLE', // a part of the service is not ready (e.g. the pilot bundle is not built)
  'WMS_CONFIG', // bad configuration or command-line flags
  'WMS_INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** A problem located in a JDL text. Lines and columns are 1-based. */
export interface JdlProblem {
  message: string;
  line: number;
  column: number;
  /** The attribute the problem belongs to, when there is one. */
  attribute?: string;
}

export interface WmsErrorOptions {
  details?: unknown;
  retryable?: boolean;
  cause?: unknown;
}

export class WmsError extends Error {
  readonly code: ErrorCode;
  readonly details: unknown;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, options: WmsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WmsError';
    this.code = code;
    this.details = options.details;
    this.retryable = options.retryable ?? false;
  }
}

/** True for a WmsError from any copy of this module (checks the shape, not the prototype). */
export function isWmsError(e: unknown): e is WmsError {
  return (
    typeof e === 'object' &&
    e !== null &&
    (e as { name?: unknown }).name === 'WmsError' &&
    typeof (e as { code?: unknown }).code === 'string'
  );
}

/** A JDL error whose details are the located problems; the message names the first one. */
export function jdlError(code: 'WMS_JDL_SYNTAX' | 'WMS_JDL_INVALID' | 'WMS_JDL_PARAMETRIC', problems: JdlProblem[]): WmsError {
  const first = problems[0];
  const where = first ? ` at line ${first.line}, column ${first.column}` : '';
  const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
  return new WmsError(code, `${first?.message ?? 'invalid JDL'}${where}${more}`, {
    details: { problems },
  });
}
