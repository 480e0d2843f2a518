/**
 * `wms share list` and `wms share set VO GROUP N` (admins): the fair share of each group
 * (DIRAC's JobShare, default 1000). Setting one recomputes the group's task-queue priorities on
 * the server at once. `wms share list` shows every group that has a share set or ever had jobs.
 */
import type { Share, ShareList } from '../../api/index.js';
import { isValidName } from '../../core/identity.js';
import { clientFrom, type CommandSpec } from '../command.js';
import { UsageError } from '../errors.js';
import { table } from '../output.js';
import { answerCommand, clientCommand, printAnswer } from './client-command.js';

const list = answerCommand<ShareList>({
  name: ['share', 'list'],
  usage: '',
  summary: 'the fair share of every group (admins)',
  details:
    'Every group that has a share set, or ever had jobs, with its share; "(default)" marks a group\n' +
    "without one (DIRAC's JobShare default, 1000). Within a VO, the groups with work divide the\n" +
    "resources in proportion to their shares; see the dashboard's Usage page for shares against use.",
  positionals: [0, 0],
  path: () => '/api/shares',
  text: (answer) =>
    answer.shares.length === 0
      ? `no groups yet (the default share is ${answer.defaultShare})`
      : table(
          ['VO', 'GROUP', 'SHARE'],
          answer.shares.map((s) => [s.vo, s.group, s.configured ? String(s.share) : `${s.share} (default)`]),
        ),
});

/** A share from the command line: a positive decimal number. */
function shareValue(text: string): number {
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || !Number.isFinite(n) || n <= 0) {
    throw new UsageError(`share set: "${text}" is not a number > 0`);
  }
  return n;
}

const set = clientCommand({
  name: ['share', 'set'],
  usage: 'VO GROUP N',
  summary: "set a group's fair share (admins)",
  details:
    'N is a number > 0 (the default is 1000). The share counts against the other groups of the\n' +
    "same VO that have work; the group's waiting jobs get their new priority at once.",
  positionals: [3, 3],
  async run(values, positionals, io) {
    const [vo, group, text] = positionals as [string, string, string];
    for (const [what, name] of [
      ['VO', vo],
      ['group', group],
    ] as const) {
      if (!isValidName(name)) throw new UsageError(`share set: "${name}" is not a ${what} name (letters, digits, . _ @ -)`);
    }
    const share = shareValue(text);
    const row = await clientFrom(io).json<Share>('PUT', `/api/shares/${encodeURIComponent(vo)}/${encodeURIComponent(group)}`, { share });
    printAnswer(io, values, row, () => `share of ${row.vo}/${row.group} set to ${row.share}`);
    return 0;
  },
});

export const shareCommands: CommandSpec[] = [list, set];
