/**
 * Sandboxes: tar.gz archives named by their SHA-256 (routes: `services/plugins/sandboxes.ts`).
 *
 * - Upload: streamed to a temporary file while hashed, then kept by the store (`ctx.store`:
 *   chunks in PostgreSQL, or a file on PGlite; see sandbox-store.ts) with its rows. A body that
 *   does not hash to the name → 400 WMS_SANDBOX_CHECKSUM; larger than the limit → 413
 *   WMS_SANDBOX_TOO_LARGE (at once when Content-Length says so); in both cases nothing is kept.
 *   An archive that would cost too much to open (it expands beyond 200 times its size or
 *   beyond the unpack limits, or takes too long to read: measured in a child process, see
 *   sandbox-spool.ts) → 400 WMS_VALIDATION naming why, nothing kept. Users and admins upload
 *   their own; a job token uploads its job's outputs (owned by
 *   the job's owner, assigned to the job as Output). Uploading bytes that are there already
 *   makes the uploader one more owner: whoever has the bytes may use the archive.
 * - Download: the archive, to any of its owners (a user of a VO: `alice` of lhcb is not an owner
 *   of what `alice` of atlas uploaded), admins, and a job token whose job (of the token's VO and
 *   owner) uses it (input or output, in job_sandboxes). Anyone else gets 404, as if it did not
 *   exist.
 */
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { WmsError } from '../../core/errors.js';
import type { Principal } from '../../core/identity.js';
import { assignSandboxes, getJobTokenState, getSandbox, jobUsesSandbox, recordSandbox, sandboxOwnedBy } from '../../db/index.js';
import type { SandboxUpload } from '../../api/index.js';
import type { ServiceContext } from '../context.js';
import { tooLarge } from '../sandbox-store.js';
import { jobTokenRefusal } from './jobs.js';

/** An upload: the name, the size the request declares (NaN when it does not) and the body as received. */
export interface SandboxUploadInput {
  sha256: string;
  declaredBytes: number;
  body: unknown;
}

/** A sandbox to send: its size and its bytes. */
export interface SandboxDownload {
  size: number;
  stream: Readable;
}

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

/** The body as a stream; 400 when the request did not send the archive itself. */
function archiveStream(body: unknown): Readable {
  if (!body || typeof (body as Readable).on !== 'function') {
    throw new WmsError('WMS_VALIDATION', 'send the archive itself, as application/octet-stream or application/gzip');
  }
  return body as Readable;
}

/** Stores an archive owned by the caller (a job token: its job's owner, and assigned to the job as Output). */
export async function uploadSandbox(
  ctx: ServiceContext,
  p: Principal,
  input: SandboxUploadInput,
  log?: Pick<Logger, 'info'>,
): Promise<SandboxUpload> {
  const { sha256 } = input;
  if (Number.isFinite(input.declaredBytes) && input.declaredBytes > ctx.config.sandboxMaxBytes) {
    throw tooLarge(ctx.config.sandboxMaxBytes);
  }
  const body = archiveStream(input.body);
  if (p.role === 'pilot' || p.role === 'site-admin') {
    throw new WmsError('WMS_FORBIDDEN', `role ${p.role} does not own sandboxes`);
  }
  await requireLiveJobToken(ctx, p);
  const owner = { owner: p.user, ownerGroup: p.group, vo: p.vo };
  const { size, problems } = await ctx.store.put(sha256, body, async (db, stored) => {
    await recordSandbox(db, { ...stored, ...owner });
    if (p.role === 'job') await assignSandboxes(db, p.jobId, 'Output', [sha256]);
  });
  log?.info({ sha256, size, owner: owner.owner, ...(problems.length > 0 ? { problems } : {}) }, 'sandbox stored');
  return { sha256, size, reference: `SB:${sha256}` };
}

/** The archive `sha256`, for a caller who may read it; 404 for anyone else, as for one that does not exist. */
export async function downloadSandbox(ctx: ServiceContext, p: Principal, input: { sha256: string }): Promise<SandboxDownload> {
  const { sha256 } = input;
  await requireLiveJobToken(ctx, p);
  const row = await getSandbox(ctx.handle, sha256);
  if (!row || !(await mayRead(ctx, p, sha256))) throw notFound(sha256);
  const archive = await ctx.store.open(sha256);
  if (archive === null) throw notFound(sha256);
  return archive;
}
