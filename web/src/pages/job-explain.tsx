/**
 * Why a Waiting job waits, from `GET /api/jobs/:id/explain`: what stops it as a whole, then each
 * registered queue with its pilots, whether it can run the job, what stops it (the API's
 * sentences, as the CLI prints them) and what the user can do about each.
 */
import type { ExplainJob, ExplainReason } from '../../../api/index.js';
import { CeLink, SiteLink } from '../links.js';
import { fromNow, localTime } from '../time.js';

type ExplainedQueue = ExplainJob['queues'][number];

/** What the user can do about one thing that stops the job at queue `q`. */
function remedy(b: ExplainReason, q: ExplainedQueue): string {
  switch (b.kind) {
    case 'requirement':
      return 'change the JDL to ask for what this queue offers, and submit it again';
    case 'queue-paused':
      return q.pausedUntil
        ? `wait: the pause ends ${fromNow(q.pausedUntil)} (${localTime(q.pausedUntil)})`
        : 'wait: the pause ends by itself';
    case 'waiting-pilots-full':
    case 'total-pilots-full':
      return "wait: new pilots are sent as the queue's pilots start or end";
    case 'site-banned':
    case 'ce-banned':
      return "nothing: the site's administrators lift the ban";
    case 'ce-settings-invalid':
      return "nothing: the site's administrators correct the CE settings";
    case 'vo-not-served':
      return 'nothing: this queue is not for your VO';
    case 'no-task-queue':
      return 'reschedule the job';
  }
}

/** Queues that can run the job first, then those that only have to wait, then the others; by name within. */
function rank(q: ExplainedQueue): number {
  if (q.canRun) return 0;
  const waitOnly = q.blockers.every((b) => b.kind === 'queue-paused' || b.kind === 'waiting-pilots-full' || b.kind === 'total-pilots-full');
  return waitOnly ? 1 : 2;
}

function byRank(a: ExplainedQueue, b: ExplainedQueue): number {
  return rank(a) - rank(b) || `${a.site}/${a.ce}/${a.queue}`.localeCompare(`${b.site}/${b.ce}/${b.queue}`);
}

/** The panel of a Waiting job's page (`answer` null: not read yet). */
export function WhyWaiting({ answer, error }: { answer: ExplainJob | null; error: Error | null }) {
  if (!answer) {
    return error ? (
      <p class="error" data-testid="explain">
        Why it waits: {error.message}
      </p>
    ) : (
      <p data-testid="explain">Loading…</p>
    );
  }
  const queues = [...answer.queues].sort(byRank);
  return (
    <div class="explain" data-testid="explain">
      {answer.blockers.length === 0 ? (
        <p class="ok" data-testid="explain-summary">
          Nothing stops it: a pilot from a queue marked yes below can run it.
        </p>
      ) : (
        <ul class="blockers" data-testid="explain-summary">
          {answer.blockers.map((b, i) => (
            <li key={i}>{b}</li>
          ))}
        </ul>
      )}
      {queues.length > 0 && (
        <div class="table-scroll">
          <table data-testid="explain-queues">
            <thead>
              <tr>
                <th>Site</th>
                <th>CE / queue</th>
                <th title="waiting / most waiting, live / most live">Pilots</th>
                <th>Can run</th>
                <th>What stops it</th>
                <th>What you can do</th>
              </tr>
            </thead>
            <tbody>
              {queues.map((q) => (
                <tr key={q.queueId} data-testid={`explain-${q.ce}/${q.queue}`} class={q.canRun ? 'can-run' : 'blocked'}>
                  <td>
                    <SiteLink site={q.site} />
                  </td>
                  <td>
                    <CeLink ce={q.ce} /> / {q.queue} <small>({q.ceType})</small>
                  </td>
                  <td>
                    {q.pilots.waiting}/{q.pilots.maxWaiting} waiting, {q.pilots.total}/{q.pilots.maxTotal} live
                  </td>
                  <td>{q.canRun ? 'yes' : 'no'}</td>
                  <td>
                    {q.blockers.length === 0 ? (
                      '—'
                    ) : (
                      <ul class="reasons">
                        {q.blockers.map((b, i) => (
                          <li key={i}>{b.reason}</li>
                        ))}
                      </ul>
                    )}
                  </td>
                  <td>
                    {q.blockers.length === 0 ? (
                      '—'
                    ) : (
                      <ul class="reasons">
                        {[...new Set(q.blockers.map((b) => remedy(b, q)))].map((r) => (
                          <li key={r}>{r}</li>
                        ))}
                      </ul>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}
