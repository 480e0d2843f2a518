import { useEffect, useState } from 'preact/hooks';
import type { BulkActionRequest, BulkResult } from '../../../api/index.js';
import { api } from '../api.js';

/** The bulk actions of the jobs page (POST /api/jobs/<action>). */
export type BulkAction = 'kill' | 'reschedule' | 'delete';

/** What the actions act on: chosen rows, or every job matching the page's filters. */
export type BulkTarget = { ids: number[] } | { filter: NonNullable<BulkActionRequest['filter']> };

const WORDS: Record<BulkAction, { verb: string; done: string; skipped: string }> = {
  kill: { verb: 'Kill', done: 'Killed', skipped: 'already final ' },
  reschedule: { verb: 'Reschedule', done: 'Rescheduled', skipped: '' },
  delete: { verb: 'Delete', done: 'Deleted', skipped: '' },
};

/** "1 job", "3 jobs". */
export function jobCount(n: number): string {
  return `${n} job${n === 1 ? '' : 's'}`;
}

/** "(Done 20, Failed 10)": the skipped jobs by status, or nothing when none were. */
function byStatus(skipped: Record<string, number>): string {
  const parts = Object.entries(skipped)
    .filter(([, n]) => n > 0)
    .map(([s, n]) => `${s} ${n}`);
  return parts.length > 0 ? ` (${parts.join(', ')})` : '';
}

/** The request of `action` on `target`: ids or a filter, a dry run or not. */
function requestOf(target: BulkTarget, dryRun: boolean): BulkActionRequest {
  return 'ids' in target ? { ids: target.ids, dryRun } : { filter: target.filter, dryRun };
}

/**
 * The question asked before `action`, from its dry run `dry`: how many jobs it changes and how
 * many it skips, by status ("Kill 90 jobs? 30 already final will be skipped (Done 20, Failed
 * 10)."), or that it would change none.
 */
function question(action: BulkAction, dry: BulkResult): string {
  const w = WORDS[action];
  const n = dry.succeededCount;
  const skipped = dry.skipped > 0 ? ` ${dry.skipped} ${w.skipped}will be skipped${byStatus(dry.skippedByStatus)}.` : '';
  const first = dry.failed[0];
  const failing = first ? ` ${jobCount(dry.failed.length)} will fail (${first.message}${dry.failed.length > 1 ? ', …' : ''}).` : '';
  if (n === 0)
    return `Nothing to ${action}: none of the ${jobCount(dry.matched)} selected can be ${w.done.toLowerCase()}.${skipped}${failing}`;
  return `${w.verb} ${jobCount(n)}?${skipped}${failing}`;
}

/**
 * The bulk actions bar of the jobs page: Kill, Reschedule and Delete of `target`, each asked
 * first with the counts of a dry run; what is confirmed is what runs (the target as it was
 * when asked). Says what was done (done, skipped by status, each failure) and calls `onDone`
 * (the page clears its selection and reloads). A new target drops a question not answered.
 */
export function BulkActions({ target, label, onDone }: { target: BulkTarget | null; label: string; onDone: () => void }) {
  const [asking, setAsking] = useState<{ action: BulkAction; target: BulkTarget; dry: BulkResult } | null>(null);
  const [result, setResult] = useState<{ action: BulkAction; answer: BulkResult } | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const targetKey = JSON.stringify(target);
  useEffect(() => setAsking(null), [targetKey]);

  const ask = async (action: BulkAction) => {
    if (!target) return;
    setBusy(true);
    setError(null);
    setResult(null);
    try {
      const dry = await api<BulkResult>('POST', `/api/jobs/${action}`, requestOf(target, true));
      setAsking({ action, target, dry });
    } catch (e) {
      setError(`${WORDS[action].verb}: ${(e as Error).message}`);
    } finally {
      setBusy(false);
    }
  };

  const run = async () => {
    if (!asking) return;
    const { action } = asking;
    setBusy(true);
    try {
      const answer = await api<BulkResult>('POST', `/api/jobs/${action}`, requestOf(asking.target, false));
      setResult({ action, answer });
      onDone();
    } catch (e) {
      setError(`${WORDS[action].verb}: ${(e as Error).message}`);
    } finally {
      setAsking(null);
      setBusy(false);
    }
  };

  return (
    <div class="bulk" data-testid="bulk">
      <div class="actions">
        <span data-testid="bulk-selected">{label}</span>
        {(['kill', 'reschedule', 'delete'] as const).map((a) => (
          <button key={a} type="button" class={a === 'delete' ? 'danger' : undefined} disabled={!target || busy} onClick={() => ask(a)}>
            {WORDS[a].verb}
          </button>
        ))}
      </div>
      {asking && (
        <div class="confirm" role="alertdialog" aria-labelledby="bulk-question" data-testid="bulk-confirm">
          <p id="bulk-question">{question(asking.action, asking.dry)}</p>
          {asking.dry.succeededCount > 0 && (
            <button type="button" class={asking.action === 'delete' ? 'danger' : undefined} disabled={busy} onClick={run}>
              {WORDS[asking.action].verb} {jobCount(asking.dry.succeededCount)}
            </button>
          )}{' '}
          <button type="button" disabled={busy} onClick={() => setAsking(null)} autoFocus>
            Cancel
          </button>
        </div>
      )}
      {result && (
        <div class="bulk-result" role="status" data-testid="bulk-result">
          <p>
            {WORDS[result.action].done} {jobCount(result.answer.succeededCount)}.
            {result.answer.skipped > 0 &&
              ` ${result.answer.skipped} ${WORDS[result.action].skipped}skipped${byStatus(result.answer.skippedByStatus)}.`}
            {result.answer.failed.length > 0 && ` ${jobCount(result.answer.failed.length)} failed:`}{' '}
            <button type="button" class="small" onClick={() => setResult(null)}>
              Dismiss
            </button>
          </p>
          {result.answer.failed.length > 0 && (
            <ul class="failures">
              {result.answer.failed.map((f) => (
                <li key={f.id}>
                  job {f.id}: {f.message}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
