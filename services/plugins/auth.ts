/**
 * Authentication and role checks. Routes declare who may call them with
 * `onRequest: requireRole(ctx, 'user', 'admin')`; the hook reads the `Authorization: Bearer`
 * token, verifies it (services/token-signer.ts: EdDSA, or an HMAC for job tokens only) and puts
 * the principal on `request.identity`.
 *
 * - no token → 401 WMS_AUTH_MISSING
 * - bad signature, expired, wrong issuer, malformed → 401 WMS_AUTH_INVALID
 * - valid token, role not allowed → 403 WMS_FORBIDDEN
 *
 * Ownership is checked by the routes: users get `scope: { owner }` on every db call, so
 * another user's job is "not found" (404, never 403: it does not reveal that the job exists);
 * a job token is bound to its job id and a pilot token to its pilot id.
 */
import type { FastifyInstance, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import { WmsError } from '../../core/errors.js';
import type { Principal, Role } from '../../core/identity.js';
import type { ServiceContext } from '../context.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The verified caller; null on routes that need no token. */
    identity: Principal | null;
  }
}

/** Adds `request.identity` (call once, on the root instance). */
export function registerAuth(app: FastifyInstance): void {
  app.decorateRequest('identity', null);
}

/** The bearer token of a request, or null. */
export function bearerToken(request: FastifyRequest): string | null {
  const header = request.headers.authorization;
  if (!header) return null;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!m) throw new WmsError('WMS_AUTH_INVALID', 'invalid token: expected "Authorization: Bearer <token>"');
  return m[1] ?? null;
}

/** An onRequest hook that admits a verified token of one of `roles`. */
export function requireRole(ctx: ServiceContext, ...roles: Role[]): onRequestAsyncHookHandler {
  return async (request) => {
    const token = bearerToken(request);
    if (token === null) throw new WmsError('WMS_AUTH_MISSING', 'authentication required: no bearer token');
    const principal = await (await ctx.signer()).verify(token);
    if (!roles.includes(principal.role)) {
      throw new WmsError('WMS_FORBIDDEN', `role ${principal.role} may not call this route`);
    }
    request.identity = principal;
  };
}

/** The verified caller of a route guarded by `requireRole`. */
export function identityOf(request: FastifyRequest): Principal {
  if (!request.identity) throw new WmsError('WMS_AUTH_MISSING', 'authentication required');
  return request.identity;
}

/** The OpenAPI security requirement of a guarded route. */
export const BEARER = [{ bearerAuth: [] as string[] }];

/** The OpenAPI security requirement of a route that needs no token (the document's default is `BEARER`). */
export const OPEN: { bearerAuth: string[] }[] = [];

/** Does the route's schema say it takes a bearer token (`security` not empty)? */
export function takesBearer(schema: unknown): boolean {
  const security = (schema as { security?: unknown } | undefined)?.security;
  return Array.isArray(security) && security.length > 0;
}
