/**
 * The `wms` command table, its help, and `run(argv, io)`: parse one command line and run the
 * command. Never exits the process (that is `cli/main.ts`), so tests call `run` directly.
 */
import { parseArgs } from 'node:util';
import { closestName } from '../core/closest-name.js';
import { VERSION } from '../core/version.js';
import type { CommandSpec, Io, LongRunning, OptionSpec } from './command.js';
import { accountingCommands } from './commands/accounting.js';
import { appCommands } from './commands/app.js';
import { jobCommands } from './commands/job.js';
import { matchCommands } from './commands/match.js';
import { pilotCommands } from './commands/pilot.js';
import { sandboxCommands } from './commands/sandbox.js';
import { serverCommands } from './commands/server.js';
import { shareCommands } from './commands/share.js';
import { ceCommands, siteCommands } from './commands/site.js';
import { tokenCommands } from './commands/token.js';
import { UsageError } from './errors.js';
import { printTimesLocally } from './output.js';

export const COMMANDS: CommandSpec[] = [
  ...serverCommands,
  ...tokenCommands,
  ...jobCommands,
  ...matchCommands,
  ...sandboxCommands,
  ...pilotCommands,
  ...siteCommands,
  ...ceCommands,
  ...accountingCommands,
  ...shareCommands,
  ...appCommands,
];

const GROUPS: Record<string, string> = {
  server: 'run the services',
  token: 'identity: issue tokens, show who you are',
  job: 'submit, follow and act on jobs',
  match: 'explain the matcher',
  sandbox: 'upload and download sandbox archives',
  pilot: 'pilots (site admins): list them, show what one found on its node, read its log',
  site: 'the site registry: apply, list, status, ban, allow (site admins)',
  ce: 'ban and allow computing elements (site admins)',
  accounting: 'CPU and wall time of finished jobs by site, group, user or VO',
  share: 'the fair share of each group: list, set (admins)',
  app: 'application templates (the Submit page forms): list, show, apply, remove (admins)',
};

/** Groups whose one command runs when options follow the group directly (`wms accounting --by site`). */
const DEFAULT_COMMANDS: Readonly<Record<string, string>> = { accounting: 'report' };

function optionLines(options: Record<string, OptionSpec>): string[] {
  const entries = Object.entries({ ...options, help: { type: 'boolean', short: 'h', description: 'show this help' } as OptionSpec });
  const left = entries.map(([name, o]) => `${o.short ? `-${o.short}, ` : ''}--${name}${o.value ? ` ${o.value}` : ''}`);
  const width = Math.max(...left.map((l) => l.length));
  return entries.map(([, o], i) => `  ${(left[i] ?? '').padEnd(width)}  ${o.description}${o.multiple ? ' (repeatable)' : ''}`);
}

function envLines(env: Readonly<Record<string, string>>): string[] {
  const width = Math.max(...Object.keys(env).map((k) => k.length));
  return Object.entries(env).map(([k, v]) => `  ${k.padEnd(width)}  ${v}`);
}

export function commandHelp(c: CommandSpec): string {
  const lines = [`Usage: wms ${c.name.join(' ')} ${c.usage}`, '', c.summary[0]?.toUpperCase() + c.summary.slice(1) + '.'];
  if (c.details) lines.push('', c.details);
  lines.push('', 'Options:', ...optionLines(c.options));
  if (c.env) lines.push('', 'Environment:', ...envLines(c.env));
  return lines.join('\n');
}

export function groupHelp(group: string): string {
  const cmds = COMMANDS.filter((c) => c.name[0] === group);
  const width = Math.max(...cmds.map((c) => c.name[1].length));
  return [
    `Usage: wms ${group} <command> [options]`,
    '',
    `${GROUPS[group] ?? ''}`,
    '',
    'Commands:',
    ...cmds.map((c) => `  ${c.name[1].padEnd(width)}  ${c.summary}`),
    '',
    `Run "wms ${group} <command> --help" for its options.`,
  ].join('\n');
}

export function mainHelp(): string {
  const rows = COMMANDS.map((c) => [`${c.name.join(' ')} ${c.usage.length <= 28 ? c.usage : ''}`.trimEnd(), c.summary]);
  const width = Math.max(...rows.map(([l]) => (l ?? '').length));
  return [
    `wms ${VERSION}: the pilot-wms command line (DIRAC-style pilot-job workload management)`,
    '',
    'Usage: wms <group> <command> [options]',
    '',
    'Commands:',
    ...rows.map(([l, r]) => `  ${(l ?? '').padEnd(width)}  ${r}`),
    '',
    "Common options: --json (machine-readable output), --local (times in this machine's zone, not UTC), --help.",
    '',
    'Environment (client commands):',
    '  WMS_URL          server URL (default http://127.0.0.1:8080)',
    '  WMS_TOKEN        bearer token',
    '  WMS_DATA_DIR     data directory; its admin.token is used when no other token is set (default ./var)',
    '  Config file      $XDG_CONFIG_HOME/pilot-wms/config.json or ~/.config/pilot-wms/config.json: {"url", "token"}',
    '',
    'Environment (server): WMS_PORT, WMS_HOST, WMS_DATA_DIR, WMS_DATABASE_URL, WMS_CONFIG, ...',
    '  (see "wms server start --help")',
    '',
    'Exit codes: 0 ok, 1 failure, 2 usage error.',
  ].join('\n');
}

/** " (did you mean "wms job list"?)" for a mistyped group or command, or nothing. */
function didYouMean(group: string, sub?: string): string {
  let guess: string | undefined;
  if (sub === undefined) {
    const known = closestName(group, Object.keys(GROUPS).sort());
    // A command typed without its group (`wms submit`): the group whose command it is.
    const owners = COMMANDS.filter((c) => c.name[1] === group);
    guess = known ?? (owners.length === 1 ? owners[0]!.name.join(' ') : undefined);
  } else {
    const known = closestName(
      sub,
      COMMANDS.filter((c) => c.name[0] === group).map((c) => c.name[1]),
    );
    guess = known === undefined ? undefined : `${group} ${known}`;
  }
  return guess === undefined ? '' : ` (did you mean "wms ${guess}"?)`;
}

/** Runs one command line; answers the exit code or a long-running handle (the server). */
export async function run(argv: string[], io: Io): Promise<number | LongRunning> {
  const [group, ...tail] = argv;
  const implied = group !== undefined ? DEFAULT_COMMANDS[group] : undefined;
  const [sub, ...rest] = implied !== undefined && (tail[0] === undefined || tail[0].startsWith('-')) ? [implied, ...tail] : tail;
  if (group === undefined || group === '--help' || group === '-h' || group === 'help') {
    io.out(mainHelp());
    return 0;
  }
  if (group === '--version' || group === '-V') {
    io.out(VERSION);
    return 0;
  }
  if (!(group in GROUPS)) throw new UsageError(`unknown command "${group}"${didYouMean(group)}`);
  if (sub === undefined || sub === '--help' || sub === '-h' || sub === 'help') {
    io.out(groupHelp(group));
    return 0;
  }
  const command = COMMANDS.find((c) => c.name[0] === group && c.name[1] === sub);
  if (!command) throw new UsageError(`unknown command "${group} ${sub}"${didYouMean(group, sub)}`, groupHelp(group));
  try {
    return await runCommand(command, rest, io);
  } catch (e) {
    // A usage error of this command, found in its arguments or by the command itself: show its help.
    if (e instanceof UsageError && e.help === undefined) e.help = commandHelp(command);
    throw e;
  }
}

/** Parses `args` for `command` and runs it. */
async function runCommand(command: CommandSpec, args: string[], io: Io): Promise<number | LongRunning> {
  const [group, sub] = command.name;
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: {
        ...Object.fromEntries(
          Object.entries(command.options).map(([k, o]) => [
            k,
            { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) },
          ]),
        ),
        help: { type: 'boolean', short: 'h' },
        local: { type: 'boolean' },
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    throw new UsageError(`${group} ${sub}: ${(e as Error).message.replace(/\. To specify a positional.*$/s, '')}`);
  }
  printTimesLocally(parsed.values['local'] === true);
  if (parsed.values['help'] === true) {
    io.out(commandHelp(command));
    return 0;
  }
  const [min, max] = command.positionals;
  const n = parsed.positionals.length;
  if (n < min) throw new UsageError(`${group} ${sub}: missing arguments (usage: wms ${group} ${sub} ${command.usage})`);
  if (n > max) throw new UsageError(`${group} ${sub}: unexpected argument "${parsed.positionals[max]}"`);
  return command.run(parsed.values as Record<string, string | boolean | string[] | undefined>, parsed.positionals, io);
}
