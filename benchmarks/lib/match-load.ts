/**
 * The pilots' side of the match scenarios: `pilots` concurrent loops, each with its own pilot
 * token, asking `POST /api/match` until `matches` jobs were handed out (or nothing is left).
 */
import { createPilots, openDb, updatePilots } from '../../db/index.js';
import { freshDatabase } from './database.js';
import { Api, issueToken } from './http.js';
import { PILOT_SITE, seedWaitingJobs } from './seed.js';
import { startServer, type RunningServer } from './server.js';

export interface MatchLoadResult {
  matches: number;
  noMatch: number;
  /** 503 answers (the database briefly out of reach, say): the pilot asks again, as real pilots do. */
  unavailable: number;
  seconds: number;
  latenciesMs: number[];
}

export async function pilotTokens(api: Api, adminToken: string, pilotIds: readonly number[]): Promise<string[]> {
  return Promise.all(pilotIds.map((pilotId) => issueToken(api, adminToken, { role: 'pilot', vo: 'bench', pilotId })));
}

/**
 * Running pilot records at the benchmark's site, CE and queue: a pilot token matches as its
 * record's place, and only while its record is alive.
 */
export async function seedPilots(dbUrl: string, pilots: number): Promise<number[]> {
  const handle = await openDb(dbUrl, { poolSize: 1 });
  try {
    const ids = await createPilots(handle, benchPilotRecords(pilots, `bench-${Date.now()}`));
    await updatePilots(handle, ids, { status: 'Running', reason: 'benchmark' });
    return ids;
  } finally {
    await handle.close();
  }
}

/** Pilot records at RESOURCE's place as the site director makes them (Submitted), stamped `<prefix>-<i>`. */
export function benchPilotRecords(count: number, prefix: string) {
  return Array.from({ length: count }, (_, i) => ({
    stamp: `${prefix}-${i}`,
    site: RESOURCE.site,
    ce: RESOURCE.ce,
    ceType: 'local',
    queue: RESOURCE.queue,
    queueId: null,
    vo: 'bench',
  }));
}

/** The place and resources every benchmark pilot advertises. */
export const RESOURCE = {
  site: PILOT_SITE,
  ce: 'bench-ce.home.org',
  queue: 'long',
  processors: 1,
  ramMb: 4000,
  cpuWork: 1_000_000,
  tags: [],
};

/** 503 answers a closed loop rides over before it gives up. */
const MAX_UNAVAILABLE = 1_000;

/**
 * Closed loop: every pilot asks again as soon as it is answered, until `matches` jobs were handed
 * out. With several clients (`api` a list: one per replica), pilot i asks through client i mod n.
 */
export async function matchLoad(api: Api | readonly Api[], tokens: string[], matches: number): Promise<MatchLoadResult> {
  const apis: readonly Api[] = api instanceof Api ? [api] : api;
  let taken = 0;
  let noMatch = 0;
  let unavailable = 0;
  let exhausted = false;
  const latenciesMs: number[] = [];
  const start = performance.now();
  await Promise.all(
    tokens.map(async (token, i) => {
      const client = apis[i % apis.length]!;
      while (taken < matches && !exhausted) {
        const t = performance.now();
        const r = await client.call<{ match: { jobId: number } | null }>('POST', '/api/match', token, RESOURCE);
        latenciesMs.push(performance.now() - t);
        if (r.status === 503 && ++unavailable <= MAX_UNAVAILABLE) continue;
        if (r.status !== 200) throw new Error(`POST /api/match answered ${r.status}: ${JSON.stringify(r.body)}`);
        if (r.body.match) taken++;
        else if (++noMatch > tokens.length) exhausted = true;
      }
    }),
  );
  return { matches: taken, noMatch, unavailable, seconds: (performance.now() - start) / 1000, latenciesMs };
}

/**
 * Open loop: requests start at a fixed rate whatever the answers, spread over the pilots'
 * tokens, so latency is measured at an offered load rather than at saturation (in a closed loop
 * of N pilots, latency is N / throughput by Little's law, whatever the server does).
 */
export async function pacedMatchLoad(api: Api, tokens: string[], ratePerSecond: number, requests: number): Promise<MatchLoadResult> {
  const latenciesMs: number[] = [];
  let matches = 0;
  let noMatch = 0;
  const start = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < requests; i++) {
    const due = start + (i * 1000) / ratePerSecond;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const token = tokens[i % tokens.length]!;
    inflight.push(
      (async () => {
        const t = performance.now();
        const r = await api.ok<{ match: { jobId: number } | null }>('POST', '/api/match', token, RESOURCE);
        latenciesMs.push(performance.now() - t);
        if (r.match) matches++;
        else noMatch++;
      })(),
    );
  }
  await Promise.all(inflight);
  return { matches, noMatch, unavailable: 0, seconds: (performance.now() - start) / 1000, latenciesMs };
}

export interface MatchServer {
  dbUrl: string;
  seeded: { taskQueues: number; waiting: number };
  /** A client of the first replica. */
  api: Api;
  /** Every replica (the first one is `api`'s). */
  servers: RunningServer[];
  tokens: string[];
}

export interface MatchServerOptions {
  baseDbUrl: string;
  dbName: string;
  /** The first replica's port; the others take the next ones. */
  port: number;
  waiting: number;
  queues: number;
  pilots: number;
  label: string;
  /** Server processes on the one database (default 1), each `wms server start --no-agents`. */
  replicas?: number;
}

/**
 * A fresh database `dbName` seeded with `waiting` jobs in `queues` task queues, `replicas`
 * servers on it, each in its own process, and one pilot token per pilot (issued by the first;
 * every replica accepts it: one signing key per database); runs `load` and stops the servers
 * after it. The database stays (for a bound measured on it afterwards).
 */
export async function withMatchServer<T>(
  opts: MatchServerOptions,
  load: (s: MatchServer) => Promise<T>,
): Promise<{ result: T; dbUrl: string; seeded: MatchServer['seeded'] }> {
  const dbUrl = await freshDatabase(opts.baseDbUrl, opts.dbName);
  const seeded = await seedWaitingJobs(dbUrl, { jobs: opts.waiting, queues: opts.queues });
  console.error(`${opts.label}: seeded ${seeded.waiting} waiting jobs in ${seeded.taskQueues} task queues`);
  const servers: RunningServer[] = [];
  let api: Api | null = null;
  try {
    // One after the other: the first one migrates and makes the signing key.
    for (let i = 0; i < (opts.replicas ?? 1); i++) servers.push(await startServer({ dbUrl, port: opts.port + i }));
    api = new Api(servers[0]!.url, opts.pilots);
    const tokens = await pilotTokens(api, servers[0]!.adminToken, await seedPilots(dbUrl, opts.pilots));
    return { result: await load({ dbUrl, seeded, api, servers, tokens }), dbUrl, seeded };
  } finally {
    await api?.close();
    for (const server of servers) await server.stop();
  }
}
