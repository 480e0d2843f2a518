/**
 * Readable text for the matcher's explain answers (`wms job explain`, `wms match explain`).
 * Pure. The shapes are those of `services/explain-view.ts` (read loosely: the CLI does not
 * import services/).
 */
import { table } from '../output.js';

interface TaskQueueView {
  id: number;
  owner: string;
  ownerGroup: string;
  vo: string;
  cpuTime: number;
  priority: number;
  waitingJobs: number;
  eligible?: boolean;
  reasons?: string[];
}

interface ExplainJobAnswer {
  job: { id: number; status: string; minorStatus: string; site: string; owner: string; taskQueueId: number | null };
  waiting: boolean;
  note: string | null;
  blockers: string[];
  taskQueue: TaskQueueView | null;
  queues: { queueId: number; queue: string; ce: string; ceType: string; site: string; canRun: boolean; reasons: string[] }[];
}

interface ExplainResourceAnswer {
  resource: { site: string; ce?: string; queue?: string; cpuWork: number; processors: number; ramMb: number; tags: string[] };
  blockers: string[];
  taskQueues: TaskQueueView[];
}

const reasonText = (reasons: string[] | undefined) => (reasons && reasons.length > 0 ? reasons.join('; ') : '-');

export function formatExplainJob(answer: unknown): string {
  const a = answer as ExplainJobAnswer;
  const lines = [
    `job ${a.job.id}: ${a.job.status}${a.job.minorStatus ? ` (${a.job.minorStatus})` : ''}, owner ${a.job.owner}, site ${a.job.site}`,
  ];
  if (a.taskQueue) {
    const tq = a.taskQueue;
    lines.push(`task queue ${tq.id}: ${tq.vo}/${tq.ownerGroup}, CPU time ${tq.cpuTime}, ${tq.waitingJobs} waiting`);
  }
  if (a.blockers.length === 0) lines.push('nothing stops it: a pilot from a queue marked yes below can run it');
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

export function formatExplainResource(answer: unknown): string {
  const a = answer as ExplainResourceAnswer;
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
