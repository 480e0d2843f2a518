/**
 * Scenario `pilot-start`: from the site director's submission (the pilot record is created just
 * before the local CE starts the wrapper) to the pilot's first request for work, DB12 apart:
 * wrapper (work dir, node, bundle download, checksum, unpack), check-environment, clock skew,
 * registration. Read from the pilots' own logs. Headline: the median. Target (issue "Pilots that
 * call home"): < 2 s.
 */
import type { BenchOptions, BenchResult } from './run.js';
import { summarize } from './lib/stats.js';
import { poll, withSystem } from './lib/system.js';

const SIZES = { smoke: { pilots: 2 }, full: { pilots: 10 } };

export async function run(opts: BenchOptions): Promise<BenchResult> {
  const { pilots } = SIZES[opts.size];
  // Two at a time: both cores stay busy with one pilot each, as on a worker node.
  return withSystem(opts.baseDbUrl, 'pilot-start', { localSlots: 2, stopAfterFailedMatches: 1, pollSeconds: 0.1 }, async (s) => {
    const starts: number[] = [];
    const db12: number[] = [];
    const seen = new Set<string>();
    while (starts.length < pilots) {
      await s.api('POST', '/api/jobs', { jdl: '[ Executable = "/bin/true"; CPUTime = 600; ]' });
      const rows = await poll(
        'pilots that asked for work',
        async () => {
          const r = await s.query<{ id: string; created_at: string; asked: string | null; db12: string | null }>(
            `select p.id, p.created_at,
                    (select min(at) from pilot_logs l where l.pilot_id = p.id and l.line like '%job agent: asking for work%') as asked,
                    (select substring(min(line) from 'db12: done in ([0-9.]+) s') from pilot_logs l where l.pilot_id = p.id and l.line like '%db12: done in%') as db12
               from pilots p where p.status in ('Running', 'Done')`,
          );
          const fresh = r.filter((x) => x.asked && x.db12 && !seen.has(x.id));
          return fresh.length > 0 ? fresh : null;
        },
        60_000,
        100,
      );
      for (const r of rows) {
        seen.add(r.id);
        const d = Number(r.db12) * 1000;
        db12.push(d);
        starts.push(new Date(r.asked!).getTime() - new Date(r.created_at).getTime() - d);
      }
      process.stderr.write(`\r  ${starts.length}/${pilots} pilots`);
      await poll(
        'pilots gone',
        async () =>
          Number((await s.query<{ n: string }>(`select count(*) as n from pilots where status in ('Submitted', 'Running')`))[0]!.n) === 0,
        60_000,
        100,
      );
    }
    process.stderr.write('\n');
    const st = summarize(starts);
    return {
      scenario: 'pilot-start',
      size: opts.size,
      headline: { name: 'wrapper start to first match request, DB12 apart (median)', value: Math.round(st.p50) / 1000, unit: 's' },
      target: { seconds: 2, met: st.p50 < 2000 },
      startMs: st,
      db12Ms: summarize(db12),
    };
  });
}
