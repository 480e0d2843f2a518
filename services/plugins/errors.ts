/**
 * The one error handler and the one not-found handler. Domain errors carry no HTTP status:
 * `HTTP_STATUS` maps each code, and is an exhaustive Record so a new code forces a decision.
 *
 * - WmsError → its status, `{ code, message, problems? }` (JDL errors list each problem with
 *   line and column; WMS_DB_UNAVAILABLE adds `Retry-After`).
 * - fastify validation errors → 400 WMS_VALIDATION listing every problem (path + message).
 * - other fastify client errors (bad JSON, wrong media type, body too large) → their 4xx.
 * - anything else → 500 WMS_INTERNAL "internal error", logged, never echoed.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isWmsError, type ErrorCode, type JdlProblem } from '../../core/errors.js';
import { asDbUnavailable } from '../../db/index.js';
import type { ErrorBody, Problem } from '../schemas.js';

export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  WMS_JDL_SYNTAX: 400,
  WMS_JDL_INVALID: 400,
  WMS_JDL_PARAMETRIC: 400,
  WMS_VALIDATION: 400,
  WMS_JOB_NOT_FOUND: 404,
  WMS_JOB_STATE: 409,
  WMS_NO_MATCH: 404,
  WMS_SITE_BANNED: 403,
  WMS_SANDBOX_NOT_FOUND: 404,
  WMS_SANDBOX_CHECKSUM: 400,
  WMS_SANDBOX_TOO_LARGE: 413,
  WMS_AUTH_MISSING: 401,
  WMS_AUTH_INVALID: 401,
  WMS_FORBIDDEN: 403,
  WMS_NOT_FOUND: 404,
  WMS_CONFLICT: 409,
  WMS_DB_UNAVAILABLE: 503,
  WMS_UNAVAILABLE: 503,
  WMS_CONFIG: 500,
  WMS_INTERNAL: 500,
};

/** Seconds a client should wait before retrying when the database is down. */
export const RETRY_AFTER_SECONDS = 5;

function isJdlProblem(p: unknown): p is JdlProblem {
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof (p as JdlProblem).message === 'string' &&
    typeof (p as JdlProblem).line === 'number' &&
    typeof (p as JdlProblem).column === 'number'
  );
}

/** The problems carried in a WmsError's details, kept to the fields the API documents. */
function problemsOf(details: unknown): Problem[] | undefined {
  const list = (details as { problems?: unknown } | null | undefined)?.problems;
  if (!Array.isArray(list)) return undefined;
  return list.map((p: unknown): Problem => {
    const o = (p ?? {}) as Record<string, unknown>;
    const out: Problem = { message: typeof o['message'] === 'string' ? o['message'] : String(p) };
    if (isJdlProblem(p)) {
      out.line = p.line;
      out.column = p.column;
    }
    if (typeof o['attribute'] === 'string') out.attribute = o['attribute'];
    if (typeof o['path'] === 'string') out.path = o['path'];
    // A list submission may say which JDL a problem belongs to (index, 0-based).
    for (const k of ['jdl', 'index', 'jdlIndex']) {
      if (typeof o[k] === 'number') out.jdl = o[k] as number;
    }
    return out;
  });
}

interface AjvIssue {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

/** One readable problem per schema violation, with the path inside the request. */
function validationProblems(err: FastifyError): Problem[] {
  const context = err.validationContext ?? 'request';
  return ((err.validation ?? []) as AjvIssue[]).map((v) => {
    const params = v.params ?? {};
    let path = `${context}${v.instancePath ?? ''}`;
    let message = v.message ?? 'is invalid';
    if (v.keyword === 'required' && typeof params['missingProperty'] === 'string') {
      path = `${path}/${params['missingProperty']}`;
      message = 'is required';
    } else if (v.keyword === 'additionalProperties' && typeof params['additionalProperty'] === 'string') {
      path = `${path}/${params['additionalProperty']}`;
      message = 'is not allowed';
    } else if (v.keyword === 'enum' && Array.isArray(params['allowedValues'])) {
      message = `must be one of ${(params['allowedValues'] as unknown[]).join(', ')}`;
    }
    return { path, message };
  });
}

function send(reply: FastifyReply, status: number, body: ErrorBody): void {
  if (status === 503) reply.header('Retry-After', String(RETRY_AFTER_SECONDS));
  if (status === 413) reply.header('Connection', 'close');
  void reply.code(status).send(body);
}

/** Builds the `{ code, message, problems? }` answer for any thrown value. */
export function errorHandler(thrown: unknown, request: FastifyRequest, reply: FastifyReply): void {
  // A driver error saying the database cannot be reached becomes WMS_DB_UNAVAILABLE (503).
  const err = asDbUnavailable(thrown);
  if (isWmsError(err)) {
    const status = HTTP_STATUS[err.code] ?? 500;
    if (status >= 500 && err.code !== 'WMS_DB_UNAVAILABLE') {
      request.log.error({ err }, 'request failed');
      send(reply, 500, { code: 'WMS_INTERNAL', message: 'internal error' });
      return;
    }
    if (err.code === 'WMS_DB_UNAVAILABLE') {
      // Logged in full; the client learns only that it should retry (no host, no driver text).
      request.log.warn({ err }, 'database unavailable');
      send(reply, 503, { code: err.code, message: 'database unavailable, retry later' });
      return;
    }
    const body: ErrorBody = { code: err.code, message: err.message };
    const problems = problemsOf(err.details);
    if (problems) body.problems = problems;
    send(reply, status, body);
    return;
  }
  const fe = err as FastifyError;
  if (fe && Array.isArray(fe.validation)) {
    const problems = validationProblems(fe);
    const summary = problems.map((p) => `${p.path} ${p.message}`).join('; ');
    send(reply, 400, { code: 'WMS_VALIDATION', message: `invalid request: ${summary}`, problems });
    return;
  }
  const status = typeof fe?.statusCode === 'number' ? fe.statusCode : 500;
  if (status >= 400 && status < 500) {
    // fastify's own client errors: malformed JSON, unsupported media type, body too large.
    const code: ErrorCode = status === 404 ? 'WMS_NOT_FOUND' : 'WMS_VALIDATION';
    send(reply, status, { code, message: fe.message });
    return;
  }
  request.log.error({ err }, 'unexpected error');
  send(reply, 500, { code: 'WMS_INTERNAL', message: 'internal error' });
}

/** Installs the error and not-found handlers on the root instance. */
export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler(errorHandler);
  app.setNotFoundHandler((request, reply) => {
    void reply.code(404).send({
      code: 'WMS_NOT_FOUND',
      message: `no route ${request.method} ${request.url.split('?')[0]}`,
    } satisfies ErrorBody);
  });
}
