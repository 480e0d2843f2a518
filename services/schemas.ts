/**
 * What the routes' schemas share that is not a shape of the API (those are in api/, registered
 * with `addSchema` by plugins/openapi.ts and referenced by `$ref`): the error answers of a
 * route, and the `:id` path parameter of the job routes.
 */
import { Type, type TUnsafe } from 'typebox';
import { ErrorSchema, JobIdSchema, ref, type ErrorBody } from '../api/index.js';

/** What each error status means, for the OpenAPI document (the body is always `Error`). */
const ERROR_STATUS_DESCRIPTIONS: Readonly<Record<number, string>> = {
  400: 'The request is not valid (WMS_VALIDATION lists every problem with its path; JDL problems carry line and column)',
  401: 'No bearer token, or not a valid one (expired, revoked, bad signature)',
  403: 'The token may not do this (role, site, or another job)',
  404: 'Not found, or not yours',
  409: 'The current state does not allow it',
  413: 'The body or a JDL is over its limit',
  415: 'Unsupported media type',
  429: 'Too many requests: retry after Retry-After seconds',
  500: 'Internal error (logged; nothing internal is said)',
  503: 'The database or a part of the service is unavailable: retry after Retry-After seconds',
};

/** The `Error` shape with what a status means (a `$ref` with its own description). */
function errorAnswer(status: number): TUnsafe<ErrorBody> {
  const description = ERROR_STATUS_DESCRIPTIONS[status] ?? 'Error';
  return ref(ErrorSchema, { description });
}

/** The error answers a route may give, for its `response` schema (each a reference to `Error`). */
export function errorResponses(...statuses: number[]): Record<number, TUnsafe<ErrorBody>> {
  const out: Record<number, TUnsafe<ErrorBody>> = {};
  for (const s of [...statuses, 500, 503]) out[s] = errorAnswer(s);
  return out;
}

/**
 * A 200 answer of gzip bytes (a sandbox, the pilot bundle), per media type: the route's error
 * answers stay JSON. The bytes are sent as they are, never serialised.
 */
export function gzipAnswer(description: string) {
  return { description, content: { 'application/gzip': { schema: Type.String({ format: 'binary' }) } } };
}

/** The error answers of an authenticated route. */
export const AUTH_ERRORS = [401, 403] as const;

export const JobIdParams = Type.Object({ id: JobIdSchema });
