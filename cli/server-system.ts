/**
 * The whole system in one process, as `wms server start` runs it: the services, the agents
 * (site director, pilot status, stalled jobs, job cleaning) and the local site (pilots as child
 * processes of this machine, one slot per core unless configured). This is the composition
 * root: it hands the agents what they may not import themselves (the token signer, the pilot
 * bundle's checksum, the server's URL).
 *
 * Stopping (`shutdown`, on the first SIGINT/SIGTERM of `wms server start`): no job lost, none
 * run twice, no payload left behind.
 * 1. The site director stops sending pilots; this process's local pilots (those it started and
 *    those it took back from a predecessor on the same data dir; never remote ones, nor other
 *    replicas') get SIGTERM: they match no more, their running jobs finish and report, through
 *    the services, which keep running.
 * 2. It waits until every one of them ended, or `shutdownGrace` passed, or a second signal came.
 * 3. The pilots still running get a second SIGTERM: each kills its payloads' trees (SIGTERM,
 *    then SIGKILL after the job wrapper's grace) and ends; after a bound, their process groups
 *    and the payload sessions they registered get SIGKILL.
 * 4. The database is made true: the jobs the stopped pilots still held (Matched, Running,
 *    Completing, Stalled) are rescheduled ("pilot stopped by server shutdown"; past
 *    MaxRescheduling they fail), and those pilots still transient in the database become final
 *    from what their process did (Done on exit 0, Aborted when killed here, else Failed): the
 *    pilot-status agent may not run again before the server ends.
 * 5. The agents, the CE drivers, the services and the database close.
 * A process that exits before this is over (a third signal) SIGKILLs its local pilots still
 * running and their payload sessions as it exits; a server started again on the data dir settles
 * the pilots gone meanwhile (Failed) and reschedules their jobs ("pilot gone while the server was
 * stopped"), as it does for pilots that ended unseen after a SIGKILL of the server.
 * Each step is logged (or handed to the caller's `log`: the CLI prints them for the person who
 * pressed Ctrl-C).
 *
 * Logging: one root pino logger per process (services/logger.ts), made here unless the caller
 * gives one; fastify logs through it, the agent runner and each agent through children
 * (`{ component: 'agent-runner' }`, `{ agent }`), the shutdown through `{ component: 'shutdown' }`.
 */
import { EventEmitter } from 'node:events';
import { availableParallelism, hostname } from 'node:os';
import { join } from 'node:path';
import type { LocalIsolation, ServiceConfig } from '../core/config.js';
import { MINOR, type JobState } from '../core/job-states.js';
import { isPilotFinal, PILOT_TRANSIENT_STATES, type PilotState } from '../core/pilot-states.js';
import {
  applyPilotStatusChanges,
  getJobs,
  listCeQueues,
  listJobs,
  listPilots,
  openDb,
  openNoticeBus,
  rescheduleJobs,
  upsertCeQueue,
  upsertComputingElement,
  upsertSite,
  type DbHandle,
  type PilotStatusChange,
} from '../db/index.js';
import type { Agent } from '../agents/agent.js';
import { LocalComputingElement, resolveLocalUser, type LocalPilotUser } from '../agents/computing-elements/local.js';
import { ComputingElements } from '../agents/computing-elements/index.js';
import { packageRoot } from '../agents/package-root.js';
import { AgentRunner, standardAgents, type AgentRunnerOptions } from '../agents/runner.js';
import { createSiteDirector } from '../agents/site-director.js';
import { loadPilotBundle } from '../services/pilot-bundle.js';
import { sandboxStoreFor } from '../services/sandbox-store.js';
import { createRootLogger, logFormatOf, silentLogger, type Logger } from '../services/logger.js';
import { databaseTarget, prepareDataDir, startServer, type RunningServer } from '../services/server.js';
import { AGENT_TICK_EVENT } from '../services/metrics.js';
import { TokenSigner } from '../services/token-signer.js';

import { LOCAL_SITE } from '../core/local-site.js';

/** The local site's names in the registry (defined in core/, where the services check them). */
export { LOCAL_SITE };

export interface RunningSystem {
  server: RunningServer;
  runner: AgentRunner | null;
  localCe: LocalComputingElement | null;
  /** The CE drivers of this process (the local CE and every remote CE it has used). */
  computingElements: ComputingElements;
  /** Local pilot slots (0 when the local site is off). */
  localSlots: number;
  /** Stops gracefully: drains the local pilots, reconciles the database, then closes (module comment). */
  shutdown(o: ShutdownOptions): Promise<void>;
  close(): Promise<void>;
}

export interface ShutdownOptions {
  /** How long running payloads may take to finish (seconds; default: the config's `shutdownGraceSeconds`). */
  graceSeconds?: number;
  /** Aborted on a second signal: the pilots are stopped now. */
  force?: AbortSignal;
  log?: (line: string) => void;
}

/**
 * How long after the second SIGTERM a pilot may take to kill its payloads (the job wrapper's
 * grace, 10 s) and report them before its process group gets SIGKILL.
 */
const PILOT_STOP_WAIT_MS = 15_000;

/** Job states in which a pilot holds the job: rescheduled when their pilot was stopped. */
const HELD_STATES: JobState[] = ['Matched', 'Running', 'Completing', 'Stalled'];

/** The history source of what the shutdown does to jobs and pilots. */
export const SHUTDOWN_SOURCE = 'ServerShutdown';

function duration(seconds: number): string {
  if (seconds >= 120 && seconds % 60 === 0) return `${seconds / 60} min`;
  return `${seconds} s`;
}

/**
 * Steps 1 to 4 of the module comment for the local CE `localCe` (the caller has stopped the site
 * director): answers once its pilots ended and the database says so.
 */
async function stopLocalSite(
  db: DbHandle,
  config: Readonly<ServiceConfig>,
  localCe: LocalComputingElement,
  o: { graceSeconds: number; force?: AbortSignal; log: (line: string) => void },
): Promise<void> {
  const { log } = o;
  const pilots = await localCe.drain();
  const running = pilots.length === 0 ? [] : await heldJobs(db, null);
  if (pilots.length > 0) {
    log(
      `draining: ${pilots.length} local pilot(s), ${running.length} job(s) running; waiting up to ${duration(o.graceSeconds)} ` +
        `for them to finish (signal again to stop them now)`,
    );
  } else log('draining: no local pilot running');
  let left = await localCe.waitForPilots(pilots, Date.now() + o.graceSeconds * 1000, o.force);
  if (left.length > 0) {
    log(
      `stopping ${left.length} local pilot(s)${o.force?.aborted ? ' (second signal)' : ` (grace of ${duration(o.graceSeconds)} over)`}: ` +
        `their payloads get SIGTERM, then SIGKILL; waiting up to ${PILOT_STOP_WAIT_MS / 1000} s (signal again to exit at once)`,
    );
    left = await localCe.stopPilots(left, PILOT_STOP_WAIT_MS);
    if (left.length > 0)
      log(`killed ${left.length} local pilot(s) that did not end (SIGKILL to their process groups and payload sessions)`);
  }
  if (pilots.length > 0 || localCe.knownReferences().length > 0) await reconcileLocalPilots(db, config, localCe, log);
}

/** The jobs pilots hold on the local site (of the pilots `pilotIds`, or of any pilot when null). */
async function heldJobs(db: DbHandle, pilotIds: ReadonlySet<number> | null): Promise<{ id: number; pilotId: number | null }[]> {
  const { jobs } = await listJobs(db, { status: HELD_STATES, site: LOCAL_SITE.site }, { limit: 100_000 });
  return jobs
    .filter((j) => pilotIds === null || (j.pilotId !== null && pilotIds.has(j.pilotId)))
    .map((j) => ({ id: j.id, pilotId: j.pilotId }));
}

/**
 * Step 4: every pilot this process knows of (its own and the adopted ones) whose process ended:
 * still transient in the database -> final from what its process did; the jobs it held ->
 * rescheduled (MaxRescheduling applies: past it they fail).
 */
async function reconcileLocalPilots(
  db: DbHandle,
  config: Readonly<ServiceConfig>,
  localCe: LocalComputingElement,
  log: (line: string) => void,
): Promise<void> {
  const refs = new Set(localCe.knownReferences());
  const answers = await localCe.status([...refs]);
  // Newest first: a reference (a pid) may have served an older pilot too.
  const seen = new Set<string>();
  const ended: { id: number; status: PilotState; reference: string }[] = [];
  for (const p of await listPilots(db, { ce: LOCAL_SITE.ce, limit: 10_000 })) {
    if (p.reference === null || !refs.has(p.reference) || seen.has(p.reference)) continue;
    // Replicas on other machines serve a local site of the same name: pids say nothing there.
    const host = p.environment['hostname'];
    if (typeof host === 'string' && host !== hostname()) continue;
    seen.add(p.reference);
    const answer = answers.get(p.reference);
    if (answer && isPilotFinal(answer.status)) ended.push({ id: p.id, status: p.status, reference: p.reference });
  }
  const changes: PilotStatusChange[] = [];
  for (const p of ended) {
    if (!(PILOT_TRANSIENT_STATES as readonly string[]).includes(p.status)) continue;
    const a = answers.get(p.reference)!;
    const status: PilotState = a.status === 'Done' ? 'Done' : a.status === 'Aborted' ? 'Aborted' : 'Failed';
    changes.push({ id: p.id, from: p.status, status, reason: `ended at server shutdown (${a.reason})`, exitCode: a.exitCode ?? null });
  }
  await settleEndedPilots(db, config, {
    ended: ended.map((p) => p.id),
    changes,
    why: 'pilot stopped by server shutdown',
    pilots: 'stopped pilots',
    log,
  });
}

/**
 * Makes ended local pilots true in the database: `changes` (transient -> final) applied, and the
 * jobs the `ended` pilots still held rescheduled, `why` in their history (past MaxRescheduling
 * they fail); each step logged, naming the pilots as `pilots`.
 */
async function settleEndedPilots(
  db: DbHandle,
  config: Readonly<ServiceConfig>,
  o: { ended: readonly number[]; changes: readonly PilotStatusChange[]; why: string; pilots: string; log: (line: string) => void },
): Promise<void> {
  const { changes, log } = o;
  const changed = new Set(await applyPilotStatusChanges(db, changes));
  const held = await heldJobs(db, new Set(o.ended));
  if (held.length > 0) {
    const ids = held.map((j) => j.id);
    const r = await rescheduleJobs(db, ids, {
      source: `${SHUTDOWN_SOURCE}: ${o.why}`,
      maxRescheduling: config.jobLimits.maxRescheduling,
    });
    const after = await getJobs(db, r.succeeded);
    const failed = after.filter((j) => j.status === 'Failed').map((j) => j.id);
    const requeued = after.filter((j) => j.status !== 'Failed').map((j) => j.id);
    log(
      `rescheduled ${requeued.length} job(s) of the ${o.pilots}${requeued.length ? ` (${requeued.join(', ')})` : ''}` +
        (failed.length ? `; ${failed.length} failed, past MaxRescheduling (${MINOR.maxReschedulings}): ${failed.join(', ')}` : '') +
        (r.failed.length ? `; ${r.failed.length} not rescheduled: ${r.failed.map((f) => f.message).join('; ')}` : ''),
    );
  }
  if (changed.size > 0) {
    const by = new Map<string, number>();
    for (const c of changes) if (changed.has(c.id)) by.set(c.status, (by.get(c.status) ?? 0) + 1);
    log(`pilots made final: ${[...by].map(([s, n]) => `${n} ${s}`).join(', ')}`);
  }
}

/**
 * At start: the local pilots of an earlier server process on this data dir whose wrapper no
 * longer runs (that server was killed, or exited before its stop was over, and they ended or were
 * killed unseen) and that are still transient in the database become Failed, and the jobs they
 * held are rescheduled ("pilot gone while the server was stopped"; past MaxRescheduling they fail).
 */
async function settleGonePilots(
  db: DbHandle,
  config: Readonly<ServiceConfig>,
  localCe: LocalComputingElement,
  log: (line: string) => void,
): Promise<void> {
  const stamps = new Set(await localCe.gonePilotStamps());
  if (stamps.size === 0) return;
  const transient = await listPilots(db, { ce: LOCAL_SITE.ce, status: [...PILOT_TRANSIENT_STATES], limit: 10_000 });
  const gone = transient.filter((p): p is typeof p & { reference: string } => stamps.has(p.stamp) && p.reference !== null);
  const answers = await localCe.status(gone.map((p) => p.reference));
  const changes: PilotStatusChange[] = [];
  for (const p of gone) {
    const a = answers.get(p.reference);
    if (!a || !isPilotFinal(a.status)) continue;
    changes.push({ id: p.id, from: p.status, status: 'Failed', reason: `gone at server start: ${a.reason}`, exitCode: null });
  }
  await settleEndedPilots(db, config, {
    ended: changes.map((c) => c.id),
    changes,
    why: 'pilot gone while the server was stopped',
    pilots: 'pilots gone while the server was stopped',
    log,
  });
}

/**
 * Kills the local pilots still running, and their payloads, when this process exits before its
 * stop is over (a third signal, a crash): no payload outlives its pilot, and the next start
 * settles their jobs (`settleGonePilots`). Answers the function that removes the hook.
 */
function killLocalPilotsAtExit(localCe: LocalComputingElement | null): () => void {
  if (!localCe) return () => undefined;
  const hook = () => void localCe.killNow();
  process.on('exit', hook);
  return () => process.off('exit', hook);
}

export interface SystemOptions {
  /** The process's root logger; true (default): a new one at `config.logLevel` on stderr; false: silent. */
  logger?: boolean | Logger;
  /** Where pilot.tar.gz is (default: dist/pilot of this package). */
  pilotBundleDir?: string;
  /** Start the agents' schedules (default true; tests drive ticks with `runner.runOnce`). */
  schedule?: boolean;
  /** Extra environment for local pilots (tests). */
  localPilotEnv?: Record<string, string>;
  /** Extra environment for the CE drivers' commands (tests put fake batch commands on PATH). */
  ceEnv?: Record<string, string>;
}

/** The root logger of `opts.logger` (see SystemOptions.logger). */
function rootLoggerOf(config: Readonly<ServiceConfig>, logger: boolean | Logger | undefined): Logger {
  if (typeof logger === 'object') return logger;
  return logger === false ? silentLogger() : createRootLogger({ level: config.logLevel });
}

/**
 * A command's root logger: JSON lines through the command's own stderr (`err`, which tests
 * capture), or pino-pretty on stderr when that is a terminal.
 */
export function commandLogger(config: Readonly<ServiceConfig>, err: (line: string) => void): Logger {
  if (logFormatOf() === 'pretty') return createRootLogger({ level: config.logLevel });
  return createRootLogger({ level: config.logLevel, stream: { write: (line) => err(line.replace(/\n$/, '')) } });
}

/** The shutdown steps' default sink: the root logger's `shutdown` child. */
function shutdownLog(root: Logger): (line: string) => void {
  const log = root.child({ component: 'shutdown' });
  return (line) => log.info(line);
}

/** Where the start's settling of pilots gone meanwhile is told: a warning (jobs were rescheduled). */
function startLog(root: Logger): (line: string) => void {
  const log = root.child({ component: 'local-site' });
  return (line) => log.warn(line);
}

/** Registers (or updates) the local site, its CE and its one queue. */
export async function registerLocalSite(db: DbHandle, slots: number, isolation: LocalIsolation = 'auto'): Promise<void> {
  await upsertSite(db, { name: LOCAL_SITE.site, description: `this machine (${hostname()})` });
  await upsertComputingElement(db, { site: LOCAL_SITE.site, name: LOCAL_SITE.ce, type: 'local', settings: {} });
  await upsertCeQueue(db, {
    ce: LOCAL_SITE.ce,
    name: LOCAL_SITE.queue,
    processors: 1,
    maxWaitingPilots: slots,
    maxTotalPilots: slots,
    maxPilotsPerCycle: slots,
    settings: { timeLimitSeconds: 86_400, isolation },
  });
}

/**
 * Whom local pilots run as: the server's own user, or, when the server is root, the unprivileged
 * `pilot.localUser` (WMS_CONFIG when there is no such user, or it is root).
 */
export function localPilotUser(config: Readonly<ServiceConfig>): LocalPilotUser | null {
  return process.getuid?.() === 0 ? resolveLocalUser(config.pilot.localUser) : null;
}

/** The local CE of this process (its pilots run as `runAs`), registered in the database; null when the local site is off. */
async function localSiteOf(
  db: DbHandle,
  config: Readonly<ServiceConfig>,
  runAs: LocalPilotUser | null,
  env?: Record<string, string>,
): Promise<LocalComputingElement | null> {
  if (!config.localSite) return null;
  const slots = localSlotsOf(config);
  await registerLocalSite(db, slots, config.pilot.localIsolation);
  return new LocalComputingElement({ ce: LOCAL_SITE.ce, workDir: join(config.dataDir, 'local-ce'), slots, runAs, ...(env ? { env } : {}) });
}

function localSlotsOf(config: Readonly<ServiceConfig>): number {
  return config.localSite ? config.pilot.localSlots || availableParallelism() : 0;
}

/** The four agents with what they need from outside agents/: CE drivers, signer, bundle, URL. */
async function agentRunner(
  db: DbHandle,
  config: Readonly<ServiceConfig>,
  o: {
    ces: ComputingElements;
    bundleDir: string;
    serverUrl: string;
    logger: Logger;
    onTick?: AgentRunnerOptions['onTick'];
    /** True once the process stops: the site director sends no more pilots. */
    stopping?: () => boolean;
  },
): Promise<AgentRunner> {
  const signer = await TokenSigner.open(db, { issuer: config.tokens.issuer });
  // Drivers for every registered CE now, so that the pilot-status agent knows them from its first tick.
  for (const q of await listCeQueues(db)) o.ces.driverFor({ type: q.ceType, name: q.ce, settings: q.ceSettings });
  const director = createSiteDirector(
    {
      drivers: (c) => o.ces.driverFor(c),
      signPilotToken: async (p) => (await signer.sign(p, config.tokens.pilotTtlSeconds)).token,
      bundleSha256: async () => (await loadPilotBundle(o.bundleDir))?.sha256 ?? null,
      serverUrl: () => config.publicUrl ?? o.serverUrl,
    },
    config.agentSettings.siteDirector.schedule,
  );
  const stopping = o.stopping ?? (() => false);
  const sandboxStore = sandboxStoreFor(db, config, null); // removal only: no upload checker
  const agents: Agent[] = [
    { ...director, tick: async (ctx) => (stopping() ? 'no pilots sent: the server is stopping' : director.tick(ctx)) },
    ...standardAgents(config, {
      drivers: (type, name) => o.ces.known(type, name),
      removeSandboxFiles: (shas) => sandboxStore.remove(shas),
    }),
  ];
  return new AgentRunner({ db, config, agents, logger: o.logger, ...(o.onTick ? { onTick: o.onTick } : {}) });
}

/** The drivers of this process: the local CE (when served here) and one per registered remote CE. */
function computingElements(
  config: Readonly<ServiceConfig>,
  localCe: LocalComputingElement | null,
  env?: Record<string, string>,
): ComputingElements {
  return new ComputingElements({
    workDir: join(config.dataDir, 'ce'),
    local: localCe ? { name: LOCAL_SITE.ce, driver: localCe } : null,
    ...(env ? { env } : {}),
  });
}

const defaultBundleDir = () => join(packageRoot(), 'dist', 'pilot');

export async function startSystem(config: Readonly<ServiceConfig>, opts: SystemOptions = {}): Promise<RunningSystem> {
  const root = rootLoggerOf(config, opts.logger);
  const log = shutdownLog(root);
  const bundleDir = opts.pilotBundleDir ?? defaultBundleDir();
  const events = new EventEmitter();
  // Refused before anything starts when the local pilots' user is missing (the server is root).
  const runAs = config.localSite ? localPilotUser(config) : null;
  const server = await startServer(config, { logger: root, pilotBundleDir: bundleDir, events });
  let localCe: LocalComputingElement | null = null;
  let ces: ComputingElements | null = null;
  let runner: AgentRunner | null = null;
  let stopping = false;
  try {
    localCe = await localSiteOf(server.db, config, runAs, opts.localPilotEnv);
    if (localCe) await settleGonePilots(server.db, config, localCe, startLog(root));
    ces = computingElements(config, localCe, opts.ceEnv);
    if (config.agents) {
      // Each tick reaches the services' /metrics (wms_agent_tick_*) through the in-process events.
      const onTick: AgentRunnerOptions['onTick'] = (agent, tick) => events.emit(AGENT_TICK_EVENT, agent, tick);
      const r = await agentRunner(server.db, config, {
        ces,
        bundleDir,
        serverUrl: server.url,
        logger: root,
        onTick,
        stopping: () => stopping,
      });
      runner = r;
      if (opts.schedule !== false) {
        r.start();
        events.on('jobs-submitted', siteDirectorSoon(r, root));
      }
    }
  } catch (e) {
    await localCe?.close(0);
    await ces?.close();
    await server.close();
    throw e;
  }
  const ce = localCe;
  const drivers = ces;
  const forgetExitHook = killLocalPilotsAtExit(ce);
  return {
    server,
    runner,
    localCe: ce,
    computingElements: drivers,
    localSlots: localSlotsOf(config),
    shutdown: async (o) => {
      const say = o.log ?? log;
      stopping = true;
      try {
        if (ce)
          await stopLocalSite(server.db, config, ce, {
            graceSeconds: o.graceSeconds ?? config.shutdownGraceSeconds,
            log: say,
            ...(o.force ? { force: o.force } : {}),
          });
      } finally {
        say('closing: agents, computing elements, services, database');
        await runner?.stop();
        await ce?.close(0);
        forgetExitHook();
        await drivers.close();
        await server.close();
      }
      say('stopped');
    },
    close: async () => {
      stopping = true;
      await runner?.stop();
      await ce?.close();
      forgetExitHook();
      await drivers.close();
      await server.close();
    },
  };
}

export interface RunningAgents {
  runner: AgentRunner;
  /** Stops gracefully, as `RunningSystem.shutdown` (its pilots report to the services elsewhere). */
  shutdown(o: ShutdownOptions): Promise<void>;
  close(): Promise<void>;
}

/**
 * New work should not wait for the next cycle: the answer, called on each submission, runs one
 * site-director tick 200 ms later (submissions meanwhile share it), when the runner schedules it.
 */
function siteDirectorSoon(runner: AgentRunner, root: Logger): () => void {
  let pending = false;
  return () => {
    if (pending || runner.state !== 'running' || !runner.scheduledNames.includes('site-director')) return;
    pending = true;
    setTimeout(() => {
      pending = false;
      runner
        .runOnce('site-director')
        .catch((e: unknown) =>
          root.child({ agent: 'site-director' }).error({ err: e }, `tick on submission failed: ${(e as Error).message}`),
        );
    }, 200).unref();
  };
}

/**
 * The agents alone, on the configured database (`wms server agents`): for operators who run the
 * services elsewhere. Pilots call home to `publicUrl` (or host:port of the config).
 */
export async function startAgents(config: Readonly<ServiceConfig>, opts: { logger?: boolean | Logger } = {}): Promise<RunningAgents> {
  const root = rootLoggerOf(config, opts.logger);
  const log = shutdownLog(root);
  // The local site's files and the CE drivers' work dirs are in the data dir on every database.
  await prepareDataDir(config.dataDir, (line) => root.warn(line));
  const runAs = config.localSite ? localPilotUser(config) : null;
  const db = await openDb(databaseTarget(config), { poolSize: 4 });
  try {
    const localCe = await localSiteOf(db, config, runAs);
    if (localCe) await settleGonePilots(db, config, localCe, startLog(root));
    const ces = computingElements(config, localCe);
    let stopping = false;
    const runner = await agentRunner(db, config, {
      ces,
      bundleDir: defaultBundleDir(),
      serverUrl: `http://${config.host}:${config.port}`,
      logger: root,
      stopping: () => stopping,
    });
    const forgetExitHook = killLocalPilotsAtExit(localCe);
    // Jobs submitted through any replica wake the site director here (the replicas' 'work' notice).
    const notices = db.driver === 'pg' ? await openNoticeBus(databaseTarget(config), db, root.child({ part: 'notices' })) : null;
    const soon = siteDirectorSoon(runner, root);
    notices?.subscribe((n) => {
      if (n.kind === 'work') soon();
    });
    const closeAll = async (...localCeClose: Parameters<LocalComputingElement['close']>) => {
      await runner.stop();
      await notices?.close();
      await localCe?.close(...localCeClose);
      forgetExitHook();
      await ces.close();
      await db.close();
    };
    return {
      runner,
      shutdown: async (o) => {
        const say = o.log ?? log;
        stopping = true;
        try {
          if (localCe)
            await stopLocalSite(db, config, localCe, {
              graceSeconds: o.graceSeconds ?? config.shutdownGraceSeconds,
              log: say,
              ...(o.force ? { force: o.force } : {}),
            });
        } finally {
          say('closing: agents, computing elements, database');
          await closeAll(0);
        }
        say('stopped');
      },
      close: () => closeAll(),
    };
  } catch (e) {
    await db.close();
    throw e;
  }
}
