/**
 * Issue 14: "a lease makes each scheduled period run once across all processes". Two real
 * agent processes (`node dist/cli/main.js server agents --db postgres://… --only stalled-jobs`)
 * on one PostgreSQL database, the stalled-jobs agent scheduled every second (config file), run
 * side by side for ~12 s. Each tick that runs logs its period at debug level (agents/runner.ts,
 * "tick for period …", JSON lines on stderr): every period must have run at most once across
 * both processes, and nearly every period between the first and the last one must have run.
 * The database's `last_period_at` is the last period logged.
 *
 * PostgreSQL only (PGlite is one process); under CI a missing PostgreSQL fails the suite.
 * Needs `npm run build` (dist/cli/main.js).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { openDb, openNoticeBus } from '../../db/index.js';
import { IN_CI, postgresProblem, reservePostgresDatabase } from '../helpers/db.js';

const ROOT = resolve(import.meta.dirname, '../..');
const CLI = join(ROOT, 'dist/cli/main.js');
const RUN_MS = 12_000;

/** One `wms server agents` process and the tick lines it logged. */
class AgentsProcess {
  readonly ticks: { period: string; holder: string }[] = [];
  stderr = '';
  stdout = '';
  readonly exited: Promise<number | null>;
  private constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (b: Buffer) => (this.stdout += b.toString()));
    child.stderr!.on('data', (b: Buffer) => (this.stderr += b.toString()));
    this.exited = new Promise((r) => child.once('exit', (code) => r(code)));
  }

  static start(base: string, name: string, databaseUrl: string, only = 'stalled-jobs'): AgentsProcess {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('WMS_')) env[k] = v;
    Object.assign(env, { WMS_LOG_LEVEL: 'debug', WMS_LOG_FORMAT: 'json', WMS_LOCAL_SITE: 'false' });
    const args = [CLI, 'server', 'agents', '--db', databaseUrl, '--data-dir', join(base, name), '--config', join(base, 'config.json')];
    const child = spawn(process.execPath, [...args, '--only', only], { cwd: base, env, stdio: ['ignore', 'pipe', 'pipe'] });
    return new AgentsProcess(child);
  }

  /** Its JSON log records. */
  records(): { msg?: string; period?: string | null; holder?: string; agent?: string }[] {
    const out = [];
    for (const line of this.stderr.split('\n')) {
      const at = line.indexOf('{');
      if (at < 0) continue;
      try {
        out.push(JSON.parse(line.slice(at)) as { msg?: string; period?: string | null; holder?: string; agent?: string });
      } catch {
        // Not a log record.
      }
    }
    return out;
  }

  /** The scheduled periods this process ran. */
  periods(): { period: string; holder: string }[] {
    return this.records().flatMap((r) =>
      r.msg?.startsWith('tick for period') && r.period ? [{ period: r.period, holder: r.holder ?? '?' }] : [],
    );
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    const code = await Promise.race([this.exited, sleep(20_000).then(() => 'timeout' as const)]);
    if (code === 'timeout') {
      this.child.kill('SIGKILL');
      throw new Error(`agents process ${this.child.pid} did not stop in 20 s:\n${this.stderr.slice(-2000)}`);
    }
    return code;
  }
}

async function until(what: string, ok: () => boolean, ms: number, p: AgentsProcess[]): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}\n${p.map((x) => x.stderr.slice(-1500)).join('\n---\n')}`);
    await sleep(100);
  }
}

const problem = postgresProblem();
if (problem !== null) {
  if (IN_CI) {
    describe('agent periods across processes [postgres]', () => {
      it('needs PostgreSQL', () => {
        throw new Error(`${problem}; CI is set, so this suite must not be skipped`);
      });
    });
  } else {
    console.warn(`[agent periods] SKIPPING: ${problem}`);
    describe.skip('agent periods across processes [postgres]', () => undefined);
  }
} else {
  const databaseUrl = reservePostgresDatabase();

  describe('agent periods across processes [postgres]', () => {
    let base = '';
    const procs: AgentsProcess[] = [];
    afterAll(async () => {
      for (const p of procs) await p.stop().catch(() => null);
      if (base) await rm(base, { recursive: true, force: true });
    });

    it('two `wms server agents` processes, a schedule every second: each period runs once, nearly every period runs', async () => {
      base = await mkdtemp(join(tmpdir(), 'wms-agent-periods-'));
      await writeFile(join(base, 'config.json'), JSON.stringify({ agentSettings: { stalledJobs: { schedule: '* * * * * *' } } }));
      const url = await databaseUrl();
      procs.push(AgentsProcess.start(base, 'a', url), AgentsProcess.start(base, 'b', url));
      await until('both processes run their agents', () => procs.every((p) => p.stdout.includes('agents running')), 180_000, procs);
      await sleep(RUN_MS);
      for (const p of procs) expect(await p.stop()).toBe(0);

      const ticks = procs.flatMap((p) => p.periods());
      const perPeriod = new Map<string, string[]>();
      for (const t of ticks) perPeriod.set(t.period, [...(perPeriod.get(t.period) ?? []), t.holder]);
      const twice = [...perPeriod].filter(([, holders]) => holders.length > 1);
      const holders = new Set(ticks.map((t) => t.holder));
      console.log(
        `[agent periods] ${ticks.length} ticks, ${perPeriod.size} periods, by ${holders.size} holder(s): ` +
          [...holders].map((h) => `${h} ${ticks.filter((t) => t.holder === h).length}`).join(', '),
      );
      expect(twice).toEqual([]);

      // Nearly every period between the first and the last ran: under load node-cron may miss a
      // firing in both processes (it says so: "missed execution"), so 80 % of them at least.
      const times = [...perPeriod.keys()].map((p) => Date.parse(p)).sort((x, y) => x - y);
      expect(times.every((t) => t % 1000 === 0)).toBe(true);
      expect(times.length).toBeGreaterThanOrEqual((RUN_MS / 1000) * 0.6);
      const span = (times.at(-1)! - times[0]!) / 1000 + 1;
      expect(times.length).toBeGreaterThanOrEqual(Math.floor(span * 0.8));

      const h = await openDb(url, { migrate: false, poolSize: 1 });
      try {
        const [row] = await h.query<{ at: Date }>(`select last_period_at as at from agent_leases where agent = 'stalled-jobs'`);
        expect(row!.at.getTime()).toBe(times.at(-1));
      } finally {
        await h.close();
      }
    }, 300_000);

    it("a 'work' notice from any replica wakes the site director of an agents process at once, not at its next period", async () => {
      const dir = await mkdtemp(join(tmpdir(), 'wms-agent-wake-'));
      try {
        // Scheduled once a day: a tick within the test can only come from the notice.
        await writeFile(join(dir, 'config.json'), JSON.stringify({ agentSettings: { siteDirector: { schedule: '0 0 3 * * *' } } }));
        const url = await databaseUrl();
        const p = AgentsProcess.start(dir, 'w', url, 'site-director');
        procs.push(p);
        await until('the agents process runs', () => p.stdout.includes('agents running'), 180_000, [p]);
        const ticks = () => p.records().filter((r) => r.msg?.startsWith('tick for period')).length;
        await sleep(1000);
        expect(ticks()).toBe(0);
        const h = await openDb(url, { migrate: false, poolSize: 1 });
        const bus = await openNoticeBus(url, h);
        try {
          await bus.publish({ kind: 'work', taskQueues: [1] });
          await until('a site-director tick after the notice', () => ticks() === 1, 30_000, [p]);
          // A notice that is not new work wakes nothing.
          await bus.publish({ kind: 'sites-changed' });
          await sleep(1500);
          expect(ticks()).toBe(1);
        } finally {
          await bus.close();
          await h.close();
        }
        expect(await p.stop()).toBe(0);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }, 300_000);
  });
}
