/**
 * The job-cleaning agent (DIRAC's JobCleaningAgent): each tick,
 * with `config.agentSettings.jobCleaning` (retentionSeconds, batchSize), removes jobs Deleted
 * for longer than the retention, sets Deleted at most `batchSize` Done / Failed / Killed jobs
 * older than it, removes sandboxes no job uses any more (then their files, through
 * `removeSandboxFiles`) and purges old heartbeats of finished jobs. See db/ops/job-cleaning.ts.
 *
 * Without `removeSandboxFiles` sandboxes are left alone: removing their rows would leak the
 * files on disk for ever.
 */
import { JOB_CLEANING_SOURCE, cleanJobs } from '../db/index.js';
import { configuredAgent, type Agent } from './agent.js';

export interface JobCleaningAgentOptions {
  /** Default: the default config's `agentSettings.jobCleaning.schedule`. */
  schedule?: string;
  /**
   * Deletes the files of sandboxes whose rows were removed (the services' SandboxStore).
   * Called after the rows are gone; a failure is logged and leaves orphan files only.
   */
  removeSandboxFiles?: (sha256s: string[]) => Promise<void>;
}

export function createJobCleaningAgent(opts: JobCleaningAgentOptions = {}): Agent {
  const removeFiles = opts.removeSandboxFiles;
  return configuredAgent('job-cleaning', 'jobCleaning', opts.schedule, async (ctx, s) => {
    const r = await cleanJobs(ctx.db, {
      now: ctx.now(),
      retentionSeconds: s.retentionSeconds,
      batchSize: s.batchSize,
      sandboxes: removeFiles !== undefined,
      source: JOB_CLEANING_SOURCE,
    });
    let filesNote = '';
    if (removeFiles && r.sandboxes.length > 0) {
      try {
        await removeFiles(r.sandboxes);
      } catch (e) {
        filesNote = ' (their files could not all be deleted, see the log)';
        ctx.log.warn(`sandbox files not deleted: ${(e as Error).message ?? String(e)}; sha256: ${r.sandboxes.join(', ')}`);
      }
    }
    const parts = [
      r.removed.length > 0 ? `${r.removed.length} deleted job(s) removed` : null,
      r.deleted.length > 0 ? `${r.deleted.length} job(s) set Deleted` : null,
      r.sandboxes.length > 0 ? `${r.sandboxes.length} sandbox(es) removed${filesNote}` : null,
      r.heartbeats > 0 ? `${r.heartbeats} heartbeat(s) purged` : null,
    ].filter((p): p is string => p !== null);
    return parts.length === 0 ? 'nothing to clean' : parts.join(', ');
  });
}
