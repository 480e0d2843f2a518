/**
 * The web dashboard (`web/`, built by `scripts/build-web.mjs` into `dist/web/`): `GET /` and
 * every client route answer `index.html`; `/assets/*` are the hashed script and stylesheet
 * (cached for a year, immutable). No token needed to load the page: it asks for one and sends
 * it with every API call.
 *
 * Never shadows the services: specific routes win over this wildcard in fastify's router, and a
 * path under `/api`, `/docs`, `/metrics` or `/pilot` that no route serves stays the JSON 404 of
 * `plugins/errors.ts` rather than becoming the page. A missing build answers 503 with the
 * command that makes it.
 */
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Paths that belong to the services, never to the dashboard. */
const RESERVED = /^\/(api|docs|metrics|pilot)(\/|$)/;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/** `dist/web` of the package, from source (`services/plugins/`) or built (`dist/services/plugins/`). */
export function defaultWebDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) break;
    dir = up;
  }
  return join(dir, 'dist', 'web');
}

export interface DashboardOptions {
  /** Where the built dashboard is; defaults to the package's `dist/web`. */
  webDir?: string;
}

export const dashboardPlugin: FastifyPluginAsync<DashboardOptions> = async (app, opts) => {
  const root = resolve(opts.webDir ?? defaultWebDir());
  let index: Buffer | null = null;

  const sendIndex = async (reply: FastifyReply) => {
    // Read once it exists (a build made after the start is picked up).
    index ??= await readFile(join(root, 'index.html')).catch(() => null);
    if (!index) {
      return reply
        .code(503)
        .type('text/plain; charset=utf-8')
        .send(`The dashboard is not built (no ${join(root, 'index.html')}): run npm run build.`);
    }
    return reply.type(TYPES['.html']!).header('cache-control', 'no-cache').send(index);
  };

  app.get('/', { schema: { hide: true } }, (_request, reply) => sendIndex(reply));

  app.get('/*', { schema: { hide: true } }, async (request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    if (RESERVED.test(path)) return reply.callNotFound();
    if (path.startsWith('/assets/')) {
      let file: string;
      try {
        file = resolve(root, `.${decodeURIComponent(path)}`);
      } catch {
        return reply.callNotFound();
      }
      const body = file.startsWith(root + sep) ? await readFile(file).catch(() => null) : null;
      if (!body) return reply.callNotFound();
      return reply
        .type(TYPES[extname(file)] ?? 'application/octet-stream')
        .header('cache-control', 'public, max-age=31536000, immutable')
        .send(body);
    }
    // A client route (`/jobs/12`): the page routes itself. Paths that look like files are not.
    if (extname(path) !== '') return reply.callNotFound();
    return sendIndex(reply);
  });
};
