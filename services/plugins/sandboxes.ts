/**
 * Sandboxes: tar.gz archives named by their SHA-256.
 *
 * - `PUT /api/sandboxes/:sha256` (body `application/octet-stream` or `application/gzip`):
 *   streamed to a temporary file while hashed, then renamed into place. A body that does not
 *   hash to the name → 400 WMS_SANDBOX_CHECKSUM; larger than the limit → 413
 *   WMS_SANDBOX_TOO_LARGE (at once when Content-Length says so); in both cases nothing stays on
 *   disk. An archive that would cost too much to open (it expands beyond 200 times its size or
 *   beyond the unpack limits, or takes too long to read: measured in a child process, see
 *   sandbox-store.ts) → 400 WMS_VALIDATION naming why, nothing kept. Users and admins upload
 *   their own; a job token uploads its job's outputs (owned by
 *   the job's owner, assigned to the job as Output). Uploading bytes that are there already
 *   makes the uploader one more owner: whoever has the bytes may use the archive.
 * - `GET /api/sandboxes/:sha256`: the archive, to any of its owners (a user of a VO: `alice` of
 *   lhcb is not an owner of what `alice` of atlas uploaded), admins, and a job token whose job
 *   (of the token's VO and owner) uses it (input or output, in job_sandboxes). Anyone else gets
 *   404, as if it did not exist.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Readable } from 'node:stream';
import { Type } from 'typebox';
import { WmsError } from '../../core/errors.js';
import type { Principal } from '../../core/identity.js';
import { assignSandboxes, getJobTokenState, getSandbox, jobUsesSandbox, recordSandbox, sandboxOwnedBy } from '../../db/index.js';
import type { PluginOptions, ServiceContext } from '../context.js';
import { tooLarge } from '../sandbox-store.js';
import { ref, SandboxUploadSchema } from '../../api/index.js';
import { AUTH_ERRORS, errorResponses, gzipAnswer } from '../schemas.js';
import { jobTokenRefusal } from './jobs.js';
import { BEARER, identityOf, requireRole } from './auth.js';

const Params = Type.Object({
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the archive, lower-case hex' }),
});

/** Content types accepted for an upload; the body reaches the handler as a raw stream. */
const ARCHIVE_TYPES = ['application/octet-stream', 'application/gzip', 'application/x-gzip'];

function notFound(sha: string): WmsError {
  return new WmsError('WMS_SANDBOX_NOT_FOUND', `no sandbox ${sha}`);
}

/**
 * A job token works only while its job is not over and is held by the pilot the token was minted
 * for (`jobTokenRefusal`): 403 otherwise (no output attached to a finished job, no input read by
 * a job token of an earlier match).
 */
async function requireLiveJobToken(ctx: ServiceContext, p: Principal): Promise<void> {
  if (p.role !== 'job') return;
  const refusal = jobTokenRefusal(p, await getJobTokenState(ctx.handle, p.jobId));
  if (refusal !== null) throw new WmsError('WMS_FORBIDDEN', refusal);
}

/** May `p` read the sandbox `sha` (which exists)? */
async function mayRead(ctx: ServiceContext, p: Principal, sha: string): Promise<boolean> {
  if (p.role === 'admin') return true;
  // An owner is the pair (VO, user): the same name in another VO owns nothing here.
  if (p.role === 'user') return sandboxOwnedBy(ctx.handle, sha, { owner: p.user, vo: p.vo });
  if (p.role === 'job') return jobUsesSandbox(ctx.handle, p.jobId, sha, { owner: p.user, vo: p.vo });
  return false;
}

export const sandboxesPlugin: FastifyPluginAsyncTypebox<PluginOptions> = async (app, { ctx }) => {
  app.addContentTypeParser(ARCHIVE_TYPES, (_request, payload, done) => done(null, payload));

  app.put(
    '/api/sandboxes/:sha256',
    {
      onRequest: requireRole(ctx, 'user', 'admin', 'job'),
      schema: {
        tags: ['sandboxes'],
        summary: 'Upload a tar.gz archive named by its SHA-256 (body: the raw bytes)',
        description: 'Content-Type application/octet-stream or application/gzip. ' + `At most ${ctx.config.sandboxMaxBytes} bytes.`,
        consumes: ARCHIVE_TYPES,
        operationId: 'uploadSandbox',
        security: BEARER,
        params: Params,
        response: { 201: ref(SandboxUploadSchema), ...errorResponses(400, ...AUTH_ERRORS, 413, 415) },
      },
    },
    async (request, reply) => {
      const p = identityOf(request);
      const { sha256 } = request.params;
      const declared = Number(request.headers['content-length']);
      if (Number.isFinite(declared) && declared > ctx.config.sandboxMaxBytes) {
        throw tooLarge(ctx.config.sandboxMaxBytes);
      }
      const body = request.body as Readable | undefined;
      if (!body || typeof (body as Readable).on !== 'function') {
        throw new WmsError('WMS_VALIDATION', 'send the archive itself, as application/octet-stream or application/gzip');
      }
      if (p.role === 'pilot' || p.role === 'site-admin') {
        throw new WmsError('WMS_FORBIDDEN', `role ${p.role} does not own sandboxes`);
      }
      await requireLiveJobToken(ctx, p);
      const owner = { owner: p.user, ownerGroup: p.group, vo: p.vo };
      const { size, problems } = await ctx.store.put(sha256, body);
      await recordSandbox(ctx.handle, { sha256, size, ...owner });
      if (p.role === 'job') await assignSandboxes(ctx.handle, p.jobId, 'Output', [sha256]);
      request.log.info({ sha256, size, owner: owner.owner, ...(problems.length > 0 ? { problems } : {}) }, 'sandbox stored');
      return reply.code(201).send({ sha256, size, reference: `SB:${sha256}` });
    },
  );

  app.get(
    '/api/sandboxes/:sha256',
    {
      onRequest: requireRole(ctx, 'user', 'admin', 'job'),
      schema: {
        tags: ['sandboxes'],
        summary: 'Download a sandbox archive (application/gzip)',
        operationId: 'downloadSandbox',
        security: BEARER,
        params: Params,
        response: { 200: gzipAnswer('the tar.gz archive'), ...errorResponses(400, ...AUTH_ERRORS, 404) },
      },
    },
    async (request, reply) => {
      const p = identityOf(request);
      const { sha256 } = request.params;
      await requireLiveJobToken(ctx, p);
      const row = await getSandbox(ctx.handle, sha256);
      if (!row || !(await mayRead(ctx, p, sha256))) throw notFound(sha256);
      const size = await ctx.store.size(sha256);
      if (size === null) throw notFound(sha256);
      return (
        reply
          .header('content-type', 'application/gzip')
          .header('content-length', String(size))
          .header('etag', `"${sha256}"`)
          .header('content-disposition', `attachment; filename="${sha256}.tar.gz"`)
          // A stream is sent as is (the 200 schema documents it; nothing is serialised).
          .send(ctx.store.openRead(sha256) as unknown as string)
      );
    },
  );
};
