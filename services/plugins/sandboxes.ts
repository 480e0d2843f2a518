/**
 * Sandboxes: tar.gz archives named by their SHA-256, uploaded with `PUT /api/sandboxes/:sha256`
 * (body `application/octet-stream` or `application/gzip`, streamed) and downloaded with
 * `GET /api/sandboxes/:sha256`. Who may do what, and the limits: `services/logic/sandboxes.ts`.
 */
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from 'typebox';
import type { PluginOptions } from '../context.js';
import { ref, SandboxUploadSchema } from '../../api/index.js';
import { downloadSandbox, uploadSandbox } from '../logic/sandboxes.js';
import { AUTH_ERRORS, errorResponses, gzipAnswer } from '../schemas.js';
import { BEARER, identityOf, requireRole } from './auth.js';

const Params = Type.Object({
  sha256: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the archive, lower-case hex' }),
});

/** Content types accepted for an upload; the body reaches the handler as a raw stream. */
const ARCHIVE_TYPES = ['application/octet-stream', 'application/gzip', 'application/x-gzip'];

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
      const upload = { ...request.params, declaredBytes: Number(request.headers['content-length']), body: request.body };
      return reply.code(201).send(await uploadSandbox(ctx, identityOf(request), upload, request.log));
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
      const { sha256 } = request.params;
      const { size, stream } = await downloadSandbox(ctx, identityOf(request), request.params);
      return (
        reply
          .header('content-type', 'application/gzip')
          .header('content-length', String(size))
          .header('etag', `"${sha256}"`)
          .header('content-disposition', `attachment; filename="${sha256}.tar.gz"`)
          // A stream is sent as is (the 200 schema documents it; nothing is serialised).
          .send(stream as unknown as string)
      );
    },
  );
};
