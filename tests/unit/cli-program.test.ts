import { describe, expect, it } from 'vitest';
import type { Io } from '../../cli/command.js';
import { COMMANDS, commandHelp, mainHelp, run } from '../../cli/program.js';
import { formatError, UsageError } from '../../cli/errors.js';

function io(): Io & { lines: string[]; errors: string[] } {
  const lines: string[] = [];
  const errors: string[] = [];
  return { lines, errors, out: (t) => lines.push(t), err: (t) => errors.push(t), env: {}, cwd: '/nowhere', home: '/nowhere' };
}

describe('wms help', () => {
  it('lists every command and the env vars', async () => {
    const o = io();
    expect(await run(['--help'], o)).toBe(0);
    const text = o.lines.join('\n');
    for (const c of COMMANDS) expect(text).toContain(c.name.join(' '));
    for (const v of ['WMS_URL', 'WMS_TOKEN', 'WMS_DATA_DIR', 'config.json']) expect(text).toContain(v);
    expect(mainHelp()).toContain('Exit codes');
  });

  it('each command has help with its options and env vars', async () => {
    for (const c of COMMANDS) {
      const o = io();
      expect(await run([...c.name, '--help'], o)).toBe(0);
      expect(o.lines.join('\n')).toBe(commandHelp(c));
      for (const name of Object.keys(c.options)) expect(commandHelp(c)).toContain(`--${name}`);
    }
    expect(commandHelp(COMMANDS.find((c) => c.name.join(' ') === 'server start')!)).toContain('WMS_DATABASE_URL');
  });

  it('group help', async () => {
    const o = io();
    expect(await run(['job', '--help'], o)).toBe(0);
    expect(o.lines.join('\n')).toMatch(/submit[\s\S]*status[\s\S]*logging/);
  });
});

describe('usage errors', () => {
  const cases: string[][] = [
    ['nope'],
    ['job', 'nope'],
    ['job', 'status'],
    ['job', 'status', 'abc'],
    ['job', 'list', '--bogus'],
    ['job', 'list', '--limit', 'x'],
    ['job', 'list', '--status', 'Sleeping'],
    ['job', 'parameters', '1', '2'],
    ['token', 'issue', '--user', 'u', '--vo', 'v'],
    ['token', 'issue', '--user', 'u', '--vo', 'v', '--group', 'g', '--role', 'pilot'],
    ['token', 'issue', '--user', 'u', '--vo', 'v', '--group', 'g', '--ttl', 'forever'],
    ['match', 'explain'],
    ['sandbox', 'get', 'xyz'],
  ];
  it.each(cases)('%s', async (...argv) => {
    await expect(run(argv, io())).rejects.toBeInstanceOf(UsageError);
  });
});

describe('wms alone, mistyped commands and usage errors', () => {
  it('wms alone and a group alone print their help and exit 0', async () => {
    const o = io();
    expect(await run([], o)).toBe(0);
    expect(o.lines.join('\n')).toBe(mainHelp());
    const g = io();
    expect(await run(['job'], g)).toBe(0);
    expect(g.lines.join('\n')).toMatch(/^Usage: wms job <command>/);
  });

  async function usageError(argv: string[]): Promise<UsageError> {
    const e: unknown = await run(argv, io()).catch((err: unknown) => err);
    expect(e).toBeInstanceOf(UsageError);
    return e as UsageError;
  }

  it('a mistyped group or command says what was meant', async () => {
    expect((await usageError(['jbo', 'list'])).message).toBe('unknown command "jbo" (did you mean "wms job"?)');
    expect((await usageError(['submit', 'a.jdl'])).message).toBe('unknown command "submit" (did you mean "wms job submit"?)');
    const sub = await usageError(['job', 'lst']);
    expect(sub.message).toBe('unknown command "job lst" (did you mean "wms job list"?)');
    expect(sub.help).toMatch(/^Usage: wms job <command>/);
    expect((await usageError(['sites'])).message).toBe('unknown command "sites" (did you mean "wms site"?)');
    expect((await usageError(['frobnicate'])).message).toBe('unknown command "frobnicate"');
    expect((await usageError(['job', 'frobnicate'])).message).toBe('unknown command "job frobnicate"');
  });

  it("a command's usage error carries that command's help, whoever found it", async () => {
    const status = COMMANDS.find((c) => c.name.join(' ') === 'job status')!;
    expect((await usageError(['job', 'status'])).help).toBe(commandHelp(status));
    // Found by the command itself (an id that is not a number).
    expect((await usageError(['job', 'status', 'abc'])).help).toBe(commandHelp(status));
    const list = COMMANDS.find((c) => c.name.join(' ') === 'job list')!;
    expect((await usageError(['job', 'list', '--bogus'])).help).toBe(commandHelp(list));
    expect(formatError(new UsageError('job status: missing arguments', commandHelp(status)))).toEqual([
      'wms: job status: missing arguments',
      '',
      commandHelp(status),
    ]);
  });
});
