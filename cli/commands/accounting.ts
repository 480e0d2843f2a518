/**
 * `wms accounting --by site|group|user|vo [--since 7d] [--json]`: totals of finished jobs (one
 * accounting record each, written by the accounting agent) as an aligned table with a TOTAL
 * line. Users see their own jobs; admins and site admins everyone's. `wms accounting` runs the
 * group's one command, `report` (`wms accounting report ...` works too).
 */
import { ACCOUNTING_GROUPINGS, type AccountingGrouping, type AccountingReport } from '../../api/usage.js';
import { parseDuration } from '../../core/config.js';
import { str, type CommandSpec, type OptionValues } from '../command.js';
import { UsageError } from '../errors.js';
import { table } from '../output.js';
import { answerCommand } from './client-command.js';

function grouping(value: string | undefined): AccountingGrouping {
  if (value === undefined) throw new UsageError(`accounting: --by is required (one of ${ACCOUNTING_GROUPINGS.join(', ')})`);
  const g = ACCOUNTING_GROUPINGS.find((x) => x === value.trim().toLowerCase());
  if (!g) throw new UsageError(`--by: "${value}" is not one of ${ACCOUNTING_GROUPINGS.join(', ')}`);
  return g;
}

/** Seconds, rounded, with thousands separators: `12,345`. */
function seconds(s: number): string {
  return Math.round(s).toLocaleString('en-US');
}

function accountingTable(answer: AccountingReport): string {
  const total = answer.rows.reduce(
    (t, r) => ({
      jobs: t.jobs + r.jobs,
      done: t.done + r.done,
      failed: t.failed + r.failed,
      killed: t.killed + r.killed,
      cpu: t.cpu + r.cpuSeconds,
      wall: t.wall + r.wallSeconds,
      norm: t.norm + r.normalizedCpuSeconds,
    }),
    { jobs: 0, done: 0, failed: 0, killed: 0, cpu: 0, wall: 0, norm: 0 },
  );
  const cells = [
    ...answer.rows.map((r) => [
      r.key,
      r.jobs,
      r.done,
      r.failed,
      r.killed,
      seconds(r.cpuSeconds),
      seconds(r.wallSeconds),
      seconds(r.normalizedCpuSeconds),
    ]),
    ['TOTAL', total.jobs, total.done, total.failed, total.killed, seconds(total.cpu), seconds(total.wall), seconds(total.norm)],
  ].map((r) => r.map(String));
  // Numbers right-aligned: pad each numeric column to its widest cell first.
  const header = [answer.by.toUpperCase(), 'JOBS', 'DONE', 'FAILED', 'KILLED', 'CPU(s)', 'WALL(s)', 'NORM.CPU(DB12·s)'];
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const aligned = cells.map((r) => r.map((c, i) => (i === 0 ? c : c.padStart(widths[i] ?? 0))));
  return table(
    header.map((h, i) => (i === 0 ? h : h.padStart(widths[i] ?? 0))),
    aligned,
  );
}

/** `GET /api/accounting` with the options' grouping and period; a UsageError for bad ones. */
function accountingPath(values: OptionValues): string {
  const by = grouping(str(values, 'by'));
  const since = str(values, 'since') ?? '7d';
  if (parseDuration(since) === null) throw new UsageError(`--since: "${since}" is not a duration (e.g. 30m, 12h, 7d, 2w)`);
  return `/api/accounting?${new URLSearchParams({ by, since: since.trim() }).toString()}`;
}

const report = answerCommand<AccountingReport>({
  name: ['accounting', 'report'],
  usage: '--by site|group|user|vo [--since 7d]',
  summary: 'CPU and wall time of finished jobs, by site, group, user or VO',
  details:
    'One accounting record per finished job (Done, Failed, Killed), written by the accounting agent\n' +
    'within a minute of the job ending. CPU(s) is the CPU time the job wrapper measured, WALL(s)\n' +
    "its wall clock, NORM.CPU the CPU time times the DB12 of the pilot that ran it (DIRAC's\n" +
    "CPUNormalizationFactor), the unit of a JDL's CPUTime. Rows: biggest normalized CPU first.\n" +
    "Users see their own jobs; admins and site admins everyone's.",
  options: {
    by: { type: 'string', value: 'KEY', description: `group by ${ACCOUNTING_GROUPINGS.join(', ')}` },
    since: { type: 'string', value: 'D', description: 'jobs ended within D: 30m, 12h, 7d, 2w (default 7d)' },
  },
  positionals: [0, 0],
  path: (_positionals, values) => accountingPath(values),
  text: (answer) => (answer.rows.length === 0 ? `no finished jobs since ${answer.since}` : accountingTable(answer)),
});

export const accountingCommands: CommandSpec[] = [report];
