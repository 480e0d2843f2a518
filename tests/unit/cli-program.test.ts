import { describe, expect, it } from 'vitest';
import type { Io } from '../../cli/command.js';
import { COMMANDS, commandHelp, mainHelp, run } from '../../cli/program.js';
import { UsageError } from '../../cli/errors.js';

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
