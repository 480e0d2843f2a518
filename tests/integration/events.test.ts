/**
 * `GET /api/events` (websocket) on both databases: real undici WebSocket clients against the app
 * on a random port; changes are made through the db functions, as agents and pilots in other
 * processes make them, and must come out of the shared change-feed poller.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import type { JobState } from '../../core/job-states.js';
import { createPilots, matchJob, reportJobStatus, setSiteBanned, updatePilots } from '../../db/index.js';
import { changeFeedOf } from '../../services/plugins/events.js';
import { createTestApp, jdl, type TestApp } from '../helpers/app.js';
import { describeDb } from '../helpers/db.js';
import { EventClient as Client } from '../helpers/events.js';

const resource = { site: 'LCG.Alpha.org', tags: [], requiredTags: [], processors: 1, ramMb: 4096, gpus: 0, cpuWork: 10_000_000, vo: 'vo1' };

describeDb('event stream', (ctx) => {
  let t: TestApp;
  let url: string;
  let pilotId: number;
  let alice: string;
  let bob: string;
  const clients: Client[] = [];
  const open = async (token: string | null, via: 'header' | 'query' = 'header') => {
    const c = await Client.open(url, token, via);
    clients.push(c);
    return c;
  };
  const submit = async (token: string): Promise<number> => {
    const r = await t.call('POST', '/api/jobs', token, { jdl: jdl() });
    expect(r.statusCode, r.body).toBe(201);
    return r.json<{ jobIds: number[] }>().jobIds[0]!;
  };
  /** Matches every waiting job to the test pilot; answers their ids. */
  const matchAll = async (): Promise<number[]> => {
    const ids: number[] = [];
    for (let m = await matchJob(t.db, resource, { pilotId }); m; m = await matchJob(t.db, resource, { pilotId })) ids.push(m.id);
    return ids;
  };
  const report = async (id: number, status: JobState, minorStatus: string) => {
    const r = await reportJobStatus(t.db, id, pilotId, { status, minorStatus }, 'JobWrapper');
    expect(r).toMatchObject({ accepted: true });
  };
  const feed = () => changeFeedOf(t.db);
  const idle = async () => {
    const deadline = Date.now() + 5000;
    while (feed().running && Date.now() < deadline) await new Promise((ok) => setTimeout(ok, 20));
    expect(feed().running).toBe(false);
  };

  beforeAll(async () => {
    t = await createTestApp({ db: ctx.handle });
    url = `${(await t.app.listen({ host: '127.0.0.1', port: 0 })).replace(/^http/, 'ws')}/api/events`;
    alice = await t.user('alice');
    bob = await t.user('bob');
    [pilotId] = (await createPilots(t.db, [
      { stamp: 'events-pilot', site: 'LCG.Alpha.org', ce: 'ce01.alpha.org', ceType: 'local', queue: 'default', queueId: null, vo: 'vo1' },
    ])) as [number];
  });
  afterEach(async () => {
    for (const c of clients.splice(0)) c.close();
    await idle();
  });
  afterAll(async () => {
    await t?.close();
  });

  it("a job: its current state first, then each change in order; another owner's job never", async () => {
    const mine = await submit(alice);
    const theirs = await submit(bob);
    const c = await open(alice);
    const ack = await c.subscribe({ jobs: [mine, theirs] });
    expect(ack).toMatchObject({ type: 'subscribed', jobs: [mine], notFound: [theirs] });
    expect(c.jobEvents()).toEqual([
      expect.objectContaining({ type: 'job', id: mine, status: 'Waiting', minorStatus: 'Pilot Agent Submission', site: 'ANY' }),
    ]);
    expect((await matchAll()).sort()).toEqual([mine, theirs].sort());
    await report(mine, 'Running', 'Application');
    await report(theirs, 'Running', 'Application');
    await report(mine, 'Done', 'Execution Complete');
    await report(theirs, 'Done', 'Execution Complete');
    await c.waitFor((m) => m.type === 'job' && m['status'] === 'Done');
    await new Promise((ok) => setTimeout(ok, 800)); // a few more polls: nothing else may come
    expect(c.jobEvents(mine).map((m) => [m['status'], m['minorStatus']])).toEqual([
      ['Waiting', 'Pilot Agent Submission'],
      ['Matched', 'Assigned'],
      ['Running', 'Application'],
      ['Done', 'Execution Complete'],
    ]);
    expect(c.jobEvents(mine).at(-1)).toMatchObject({ site: 'LCG.Alpha.org', at: expect.any(String) });
    expect(c.jobEvents(theirs)).toEqual([]);
  });

  it('"mine" streams the caller\'s new jobs only; an admin\'s "all" streams everyone\'s; "all" is refused to users', async () => {
    const a = await open(alice, 'query'); // the browsers' way
    expect(await a.subscribe({ jobs: 'mine' })).toMatchObject({ type: 'subscribed', jobs: 'mine', notFound: [] });
    expect(await a.subscribe({ jobs: 'all' })).toMatchObject({ type: 'error', code: 'WMS_FORBIDDEN' });
    expect(await a.subscribe({ jobs: 'mine' })).toMatchObject({ type: 'subscribed' });
    const admin = await open(await t.admin());
    expect(await admin.subscribe({ jobs: 'all' })).toMatchObject({ type: 'subscribed', jobs: 'all' });
    const hers = await submit(alice);
    const his = await submit(bob);
    await admin.waitFor((m) => m.type === 'job' && m['id'] === his);
    await admin.waitFor((m) => m.type === 'job' && m['id'] === hers);
    await a.waitFor((m) => m.type === 'job' && m['id'] === hers && m['status'] === 'Waiting');
    await new Promise((ok) => setTimeout(ok, 800));
    expect(a.jobEvents().every((m) => m['id'] === hers)).toBe(true);
    expect(a.jobEvents(his)).toEqual([]);
    await matchAll(); // leave nothing waiting for the next tests
  });

  it('pilots: a site admin gets their changes, a user is refused; sites: bans', async () => {
    const user = await open(alice);
    expect(await user.subscribe({ pilots: true })).toMatchObject({ type: 'error', code: 'WMS_FORBIDDEN' });
    // A site admin gets the pilot and site events of the sites of its token.
    const sa = await open(
      await t.tokenFor({ role: 'site-admin', user: 'sam', vo: 'vo1', group: 'vo1_siteadmin', sites: ['LCG.Beta.org'] }),
    );
    expect(await sa.subscribe({ pilots: true, sites: true })).toMatchObject({ type: 'subscribed', pilots: true, sites: true });
    const [p] = (await createPilots(t.db, [
      { stamp: 'events-pilot-2', site: 'LCG.Beta.org', ce: 'ce02.beta.org', ceType: 'slurm', queue: 'q', queueId: null, vo: 'vo1' },
    ])) as [number];
    await sa.waitFor((m) => m.type === 'pilot' && m['id'] === p && m['status'] === 'Submitted');
    await updatePilots(t.db, [p], { status: 'Failed', reason: 'clock skew 61.2 s' });
    const failed = await sa.waitFor((m) => m.type === 'pilot' && m['id'] === p && m['status'] === 'Failed');
    expect(failed).toMatchObject({ statusReason: 'clock skew 61.2 s', site: 'LCG.Beta.org', ce: 'ce02.beta.org' });
    await setSiteBanned(t.db, 'LCG.Beta.org', true, 'downtime');
    const ban = await sa.waitFor((m) => m.type === 'site');
    expect(ban).toMatchObject({ kind: 'site', site: 'LCG.Beta.org', banned: true, reason: 'downtime' });
    expect(user.messages.filter((m) => m.type === 'pilot' || m.type === 'site')).toEqual([]);
  });

  it('a bad token, no token or a pilot token is refused at the upgrade', async () => {
    await expect(Client.open(url, 'not-a-token')).rejects.toThrow('refused');
    await expect(Client.open(url, 'not-a-token', 'query')).rejects.toThrow('refused');
    await expect(Client.open(url, null)).rejects.toThrow('refused');
    await expect(Client.open(url, await t.pilot(pilotId))).rejects.toThrow('refused');
    expect(feed().subscribers.size).toBe(0);
  });

  it('two subscribers share one poller, which stops when they leave', async () => {
    const id = await submit(alice);
    const before = feed().stats.pollersStarted;
    const one = await open(alice);
    const two = await open(alice);
    await one.subscribe({ jobs: [id] });
    await two.subscribe({ jobs: 'mine' });
    expect(feed().subscribers.size).toBe(2);
    expect(feed().stats.pollersStarted).toBe(before + 1);
    await matchAll();
    for (const c of [one, two]) await c.waitFor((m) => m.type === 'job' && m['id'] === id && m['status'] === 'Matched');
    one.close();
    two.close();
    await idle();
    expect(feed().subscribers.size).toBe(0);
  });
});
