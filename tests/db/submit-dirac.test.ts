/**
 * Issue 11 in the database layer: `%j` replaced in the job record (name and group), not only in
 * the stored JDL, as DIRAC's JobDB replaces it before it reads the name; and the registered
 * site names a submission is checked against.
 */
import { beforeEach, expect, it } from 'vitest';
import { getJobs, setSiteBanned, submitJobs, upsertComputingElement, upsertSite } from '../../db/index.js';
import { registeredSiteNames } from '../../db/queries/registry.js';
import { describeDb } from '../helpers/db.js';
import { makeJob } from './fixtures.js';

describeDb('submission, DIRAC style', (ctx) => {
  beforeEach(() => ctx.truncate());

  it("%j becomes each job's id in its name and group (every occurrence), in one bulk insert", async () => {
    const ids = await submitJobs(ctx.handle, [
      makeJob({ jobName: 'run_%j', jobGroup: 'grp_%j_%j' }),
      makeJob({ jobName: 'sweep_%j_1', jobGroup: 'plain', parametric: { number: 1, values: {} } }),
      makeJob({ jobName: 'no placeholder', jobGroup: '100%' }),
    ]);
    const rows = await getJobs(ctx.handle, ids);
    expect(rows.map((r) => [r.jobName, r.jobGroup])).toEqual([
      [`run_${ids[0]}`, `grp_${ids[0]}_${ids[0]}`],
      [`sweep_${ids[1]}_1`, 'plain'],
      ['no placeholder', '100%'],
    ]);
  });

  it('registeredSiteNames: every site, sorted, banned ones and those made by a CE included', async () => {
    expect(await registeredSiteNames(ctx.handle)).toEqual([]);
    await upsertSite(ctx.handle, { name: 'LCG.JINR.ru' });
    await upsertComputingElement(ctx.handle, { site: 'CLOUD.JINR-ONE.ru', name: 'one.jinr.ru', type: 'opennebula' });
    await setSiteBanned(ctx.handle, 'LCG.Banned.org', true, 'downtime');
    expect(await registeredSiteNames(ctx.handle)).toEqual(['CLOUD.JINR-ONE.ru', 'LCG.Banned.org', 'LCG.JINR.ru']);
  });
});
