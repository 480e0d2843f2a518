/**
 * Readable text for the matcher's explain answers (`wms job explain`, `wms match explain`).
 * Pure.
 */
import type { ExplainJob, ExplainResource } from '../../api/index.js';
import { isFinal } from '../../core/job-states.js';
import { table } from '../output.js';

const reasonText = (reasons: string[] | undefined) => (reasons && reasons.length > 0 ? reasons.join('; ') : '-');

/**
 * `wms job explain`: the job, then for a Waiting job what stops it (the API's sentences as they
 * are) and every queue with its reasons; for any other job what it is instead (the API's note),
 * with the queues for reference only while it may still wait.
 */
export function formatExplainJob(a: ExplainJob): string {
  const lines = [
    `job ${a.job.id}: ${a.job.status}${a.job.minorStatus ? ` (${a.job.minorStatus})` : ''}, owner ${a.job.owner}, site ${a.job.site}`,
  ];
  if (a.taskQueue) {
    const tq = a.taskQueue;
    lines.push(`task queue ${tq.id}: ${tq.vo}/${tq.ownerGroup}, CPU time ${tq.cpuTime}, ${tq.waitingJobs} waiting`);
  }
  if (!a.waiting) {
    if (a.note) lines.push(a.note);
    if (isFinal(a.job.status) || a.queues.length === 0) return lines.join('\n');
    lines.push('for reference, the queues and what would stop them:');
  } else if (a.blockers.length === 0) lines.push('nothing stops it: a pilot from a queue marked yes below can run it');
  else lines.push(...a.blockers.map((b) => `blocked: ${b}`));
  if (a.queues.length > 0) {
    lines.push(
      '',
      table(
        ['SITE', 'CE', 'QUEUE', 'TYPE', 'CAN RUN', 'WHY NOT'],
        a.queues.map((q) => [q.site, q.ce, q.queue, q.ceType, q.canRun ? 'yes' : 'no', reasonText(q.reasons)]),
      ),
    );
  }
  return lines.join('\n');
}

export function formatExplainResource(a: ExplainResource): string {
  const r = a.resource;
  const where = [r.site, r.ce, r.queue].filter(Boolean).join(' / ');
  const lines = [
    `resource ${where}: CPU work ${r.cpuWork}, ${r.processors} processor(s), ${r.ramMb} MB${r.tags.length ? `, tags ${r.tags.join(',')}` : ''}`,
  ];
  lines.push(...a.blockers.map((b) => `blocked: ${b}`));
  const eligible = a.taskQueues.filter((q) => q.eligible).length;
  lines.push(`${a.taskQueues.length} task queue(s), ${eligible} eligible`);
  if (a.taskQueues.length > 0) {
    lines.push(
      '',
      table(
        ['TQ', 'VO/GROUP', 'OWNER', 'CPU TIME', 'WAITING', 'ELIGIBLE', 'WHY NOT'],
        a.taskQueues.map((q) => [
          q.id,
          `${q.vo}/${q.ownerGroup}`,
          q.owner,
          q.cpuTime,
          q.waitingJobs,
          q.eligible ? 'yes' : 'no',
          reasonText(q.reasons),
        ]),
      ),
    );
  }
  return lines.join('\n');
}
