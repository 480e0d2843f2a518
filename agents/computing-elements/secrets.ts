/**
 * Secrets of a site config are references, never values in the database: `{ env: NAME }` reads
 * an environment variable of the agents' process, `{ file: PATH }` a file (trailing newline
 * dropped). A missing one is an error naming what needed it and where it was looked for.
 */
import { readFile } from 'node:fs/promises';

export async function resolveSecret(ref: unknown, what: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  if (ref && typeof ref === 'object') {
    const r = ref as Record<string, unknown>;
    if (typeof r['env'] === 'string') {
      const v = env[r['env']];
      if (v === undefined || v === '') throw new Error(`${what}: environment variable ${r['env']} is not set`);
      return v;
    }
    if (typeof r['file'] === 'string') {
      try {
        return (await readFile(r['file'], 'utf8')).replace(/\r?\n$/, '');
      } catch (e) {
        throw new Error(`${what}: cannot read ${r['file']} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { cause: e });
      }
    }
  }
  throw new Error(`${what}: a secret must be given as { env: NAME } or { file: PATH }, not a value`);
}
