/**
 * `wms share list` and `wms share set VO GROUP N` (admins): the fair share of each group
 * (DIRAC's JobShare, default 1000). Setting one recomputes the group's task-queue priorities on
 * the server at once. `wms share list` shows every group that has a share set or ever had jobs.
 */
import { isValidName } from '../../core/identity.js';
import { CLIENT_ENV, clientFrom, flag, JSON_OPTION, type CommandSpec } from '../command.js';
import { UsageError } from '../errors.js';
import { json, table } from '../output.js';

/** One row of `GET /api/shares`. */
export interface ShareRow {
  vo: string;
  group: string;
  share: number;
  configured: boolean;
}

export interface SharesAnswer {
  defaultShare: number;
  shares: ShareRow[];
}

const list: CommandSpec = {
  name: ['share', 'list'],
  usage: '[--json]',
  summary: 'the fair share of every group (admins)',
  details:
    'Every group that has a share set, or ever had jobs, with its share; "(default)" marks a group\n' +
    'without one (DIRAC\'s JobShare default, 1000). Within a VO, the groups with work divide the\n' +
    'resources in proportion to their shares; see the dashboard\'s Usage page for shares against use.',
  options: { json: JSON_OPTION },
  env: CLIENT_ENV,
  positionals: [0, 0],
  async run(values, _positionals, io) {
    const answer = await clientFrom(io).json<SharesAnswer>('GET', '/api/shares');
    if (flag(values, 'json')) {
      io.out(json(answer));
      return 0;
    }
    if (answer.shares.length === 0) {
      io.out(`no groups yet (the default share is ${answer.defaultShare})`);
      return 0;
    }
    io.out(table(['VO', 'GROUP', 'SHARE'], answer.shares.map((s) => [s.vo, s.group, s.configured ? String(s.share) : `${s.share} (default)`])));
    return 0;
  },
};

/** A share from the command line: a positive decimal number. */
function shareValue(text: string): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(`share set: "${text}" is not a number > 0`);
  }
  return n;
}

const set: CommandSpec = {
  name: ['share', 'set'],
  usage: 'VO GROUP N [--json]',
  summary: "set a group's fair share (admins)",
  details:
    'N is a number > 0 (the default is 1000). The share counts against the other groups of the\n' +
    'same VO that have work; the group\'s waiting jobs get their new priority at once.',
  options: { json: JSON_OPTION },
  env: CLIENT_ENV,
  positionals: [3, 3],
  async run(values, positionals, io) {
    const [vo, group, text] = positionals as [string, string, string];
    for (const [what, name] of [['VO', vo], ['group', group]] as const) {
      if (!isValidName(name)) throw new UsageError(`share set: "${name}" is not a ${what} name (letters, digits, . _ @ -)`);
    }
    const share = shareValue(text);
    const row = await clientFrom(io).json<ShareRow>('PUT', `/api/shares/${encodeURIComponent(vo)}/${encodeURIComponent(group)}`, { share });
    if (flag(values, 'json')) io.out(json(row));
    else io.out(`share of ${row.vo}/${row.group} set to ${row.share}`);
    return 0;
  },
};

export const shareCommands: CommandSpec[] = [list, set];
