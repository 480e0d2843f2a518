/**
 * The pilot-status agent (DIRAC's PilotStatusAgent and the SiteDirector's status polling). Each tick, with `config.agentSettings.pilotStatus`:
 *
 * 1. reads the pilots that reached a final state since the previous tick started (their CE
 *    leftovers are cleaned up at step 5, once);
 * 2. asks each CE, through its driver, the status of its transient pilots (Submitted, Waiting,
 *    Running, Unknown) that have a reference, and writes what changed:
 *    - the CE says Submitted / Waiting / Running: moved forward only (Submitted < Waiting <
 *      Running; a CE lagging behind the pilot's own registration never moves it back); an
 *      Unknown pilot takes whatever the CE says;
 *    - the CE says Unknown, or no longer knows the reference: Unknown (the CE's words, or
 *      "<ce> no longer knows <reference>");
 *    - the CE says the pilot ended (Done or Failed) while the pilot never reported its end:
 *      Failed "pilot process ended without reporting (<the CE's reason, e.g. exit code 137>)";
 *      Aborted (never ran) and Deleted stay as the CE says, with its reason;
 *    a pilot's own final report is never overwritten (only pilots still in the state read are
 *    changed). A driver whose status call throws is logged and its pilots left alone.
 * 3. Unknown for `unknownToAbortedSeconds` -> Aborted;
 * 4. transient with no update (and no job of theirs updated) for `silentToDeletedSeconds` ->
 *    Deleted, and cancelled at their CE (best effort, as DIRAC sends a kill);
 * 5. passes the pilots of step 1 to `driver.cleanup(refs)`, grouped by CE.
 *
 * "Once": step 1 reads the pilots that ended in [start of the previous tick, now), both ends
 * moved back by `cleanupDelaySeconds` (a pilot reports its end before its process exits);
 * consecutive windows meet (the runner records each tick's start on the database clock), so
 * each finished pilot is cleaned up by one tick. A tick that fails before step 5 loses its
 * window (cleanup is best effort). Before the first tick ever, the window starts
 * `silentToDeletedSeconds` back.
 */
import { DEFAULT_SERVICE_CONFIG } from '../core/config.js';
import { isPilotFinal, type PilotState } from '../core/pilot-states.js';
import {
  abortUnknownPilots,
  applyPilotStatusChanges,
  deleteSilentPilots,
  listPilotsToPoll,
  pilotsFinishedSince,
  type PilotOnCe,
  type PilotStatusChange,
} from '../db/index.js';
import type { Agent, AgentContext } from './agent.js';
import type { ComputingElement, PilotBackendStatus } from './computing-elements/types.js';

export interface PilotStatusAgentOptions {
  /** The driver of a CE (by type and name), or null when this process has none for it. */
  drivers: (ceType: string, ceName: string) => ComputingElement | null;
  /** Default: the default config's `agentSettings.pilotStatus.schedule`. */
  schedule?: string;
  /** References per `status()` call (default 500). */
  chunkSize?: number;
  /**
   * How long after a pilot's end its CE is asked to clean up (default 60 s): a pilot reports
   * Done before its process (and its wrapper, which removes the work directory) has exited, and
   * a driver may skip what still runs (the local CE does).
   */
  cleanupDelaySeconds?: number;
}

const FORWARD: Partial<Record<PilotState, number>> = { Submitted: 0, Waiting: 1, Running: 2 };

function ceWords(answer: PilotBackendStatus): string {
  if (answer.reason.trim() !== '') return answer.reason.trim();
  if (answer.exitCode !== undefined) return `exit code ${answer.exitCode}`;
  return `the computing element says ${answer.status}`;
}

/** What to write for one pilot given its CE's answer (undefined: the CE does not know it); null: nothing. */
export function decidePilotStatus(pilot: PilotOnCe, answer: PilotBackendStatus | undefined): PilotStatusChange | null {
  const change = (status: PilotState, reason: string, exitCode?: number): PilotStatusChange => ({
    id: pilot.id,
    from: pilot.status,
    status,
    reason,
    exitCode: exitCode ?? null,
  });
  if (answer === undefined) {
    return pilot.status === 'Unknown' ? null : change('Unknown', `${pilot.ce} no longer knows ${pilot.reference}`);
  }
  const st = answer.status;
  if (isPilotFinal(st)) {
    if (st === 'Aborted' || st === 'Deleted') return change(st, ceWords(answer), answer.exitCode);
    return change('Failed', `pilot process ended without reporting (${ceWords(answer)})`, answer.exitCode);
  }
  if (st === 'Unknown') return pilot.status === 'Unknown' ? null : change('Unknown', ceWords(answer));
  if (pilot.status === 'Unknown') return change(st, ceWords(answer));
  const now = FORWARD[pilot.status] ?? 0;
  const next = FORWARD[st] ?? 0;
  return next > now ? change(st, ceWords(answer)) : null;
}

function groupByCe<T extends { ce: string; ceType: string }>(items: readonly T[]): Map<string, { ce: string; ceType: string; items: T[] }> {
  const groups = new Map<string, { ce: string; ceType: string; items: T[] }>();
  for (const it of items) {
    const key = `${it.ceType}\u0000${it.ce}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { ce: it.ce, ceType: it.ceType, items: [] }));
    g.items.push(it);
  }
  return groups;
}

function message(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).replace(/\s*\n\s*/g, ' | ');
}

function driverOf(
  ctx: AgentContext,
  drivers: PilotStatusAgentOptions['drivers'],
  g: { ce: string; ceType: string; items: unknown[] },
  what: string,
): ComputingElement | null {
  try {
    const d = drivers(g.ceType, g.ce);
    if (!d) ctx.log.warn(`no ${g.ceType || '(no type)'} driver for CE ${g.ce || '(none)'}: ${g.items.length} pilot(s) not ${what}`);
    return d;
  } catch (e) {
    ctx.log.warn(`driver for ${g.ceType} CE ${g.ce} failed to load: ${message(e)}; ${g.items.length} pilot(s) not ${what}`);
    return null;
  }
}

function countBy(values: readonly string[]): string {
  const m = new Map<string, number>();
  for (const v of values) m.set(v, (m.get(v) ?? 0) + 1);
  return [...m].map(([k, n]) => `${n} ${k}`).join(', ');
}

export function createPilotStatusAgent(opts: PilotStatusAgentOptions): Agent {
  const chunkSize = opts.chunkSize ?? 500;
  const cleanupDelay = opts.cleanupDelaySeconds ?? 60;
  return {
    name: 'pilot-status',
    schedule: opts.schedule ?? DEFAULT_SERVICE_CONFIG.agentSettings.pilotStatus.schedule,
    async tick(ctx) {
      const s = ctx.config.agentSettings.pilotStatus;
      const now = ctx.now();

      // 1. Finished since the previous tick: cleaned up at the end.
      const since = ctx.previousTickAt ?? new Date(now.getTime() - s.silentToDeletedSeconds * 1000);
      const finished = await pilotsFinishedSince(ctx.db, since, cleanupDelay);

      // 2. Ask the CEs.
      const polled = await listPilotsToPoll(ctx.db);
      const groups = groupByCe(polled);
      const changes: PilotStatusChange[] = [];
      let ceErrors = 0;
      for (const g of groups.values()) {
        const driver = driverOf(ctx, opts.drivers, g, 'polled');
        if (!driver) continue;
        for (let i = 0; i < g.items.length; i += chunkSize) {
          const chunk = g.items.slice(i, i + chunkSize);
          let answers: Map<string, PilotBackendStatus>;
          try {
            answers = await driver.status(chunk.map((p) => p.reference));
          } catch (e) {
            ceErrors++;
            ctx.log.warn(`status of ${g.ceType} CE ${g.ce} failed: ${message(e)}; its ${g.items.length - i} remaining pilot(s) left alone`);
            break;
          }
          for (const p of chunk) {
            const c = decidePilotStatus(p, answers.get(p.reference));
            if (c) changes.push(c);
          }
        }
      }
      const changedIds = new Set(await applyPilotStatusChanges(ctx.db, changes));
      const changed = changes.filter((c) => changedIds.has(c.id));

      // 3. Unknown too long -> Aborted; 4. silent too long -> Deleted (and cancelled).
      const aborted = await abortUnknownPilots(ctx.db, {
        before: new Date(now.getTime() - s.unknownToAbortedSeconds * 1000),
        reason: `unknown to its computing element for more than ${s.unknownToAbortedSeconds} s`,
      });
      const silent = await deleteSilentPilots(ctx.db, {
        before: new Date(now.getTime() - s.silentToDeletedSeconds * 1000),
        reason: `not heard of for more than ${s.silentToDeletedSeconds} s`,
      });
      const toCancel = silent.filter((p): p is typeof p & { reference: string } => p.reference !== null);
      for (const g of groupByCe(toCancel).values()) {
        const driver = driverOf(ctx, opts.drivers, g, 'cancelled');
        if (!driver) continue;
        try {
          await driver.cancel(g.items.map((p) => p.reference));
        } catch (e) {
          ceErrors++;
          ctx.log.warn(`cancel on ${g.ceType} CE ${g.ce} failed: ${message(e)}`);
        }
      }

      // 5. Clean up what finished since the previous tick.
      let cleaned = 0;
      for (const g of groupByCe(finished).values()) {
        const driver = driverOf(ctx, opts.drivers, g, 'cleaned up');
        if (!driver) continue;
        try {
          await driver.cleanup(g.items.map((p) => p.reference));
          cleaned += g.items.length;
        } catch (e) {
          ceErrors++;
          ctx.log.warn(`cleanup on ${g.ceType} CE ${g.ce} failed: ${message(e)}`);
        }
      }

      const parts = [
        `${polled.length} pilot(s) polled on ${groups.size} CE(s)`,
        changed.length > 0 ? `${changed.length} changed (${countBy(changed.map((c) => c.status))})` : null,
        aborted.length > 0 ? `${aborted.length} aborted (unknown too long)` : null,
        silent.length > 0 ? `${silent.length} deleted (silent)` : null,
        cleaned > 0 ? `${cleaned} cleaned up` : null,
        ceErrors > 0 ? `${ceErrors} CE error(s), see the log` : null,
      ].filter((p): p is string => p !== null);
      return parts.join(', ');
    },
  };
}
