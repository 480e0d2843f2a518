/**
 * The whole system in one process, as `wms server start` runs it: the services, the agents
 * (site director, pilot status, stalled jobs, job cleaning) and the local site (pilots as child
 * processes of this machine, one slot per core unless configured). This is the composition
 * root: it hands the agents what they may not import themselves (the token signer, the pilot
 * bundle's checksum, the server's URL).
 */
import { EventEmitter } from 'node:events';
import { availableParallelism, hostname } from 'node:os';
import { join } from 'node:path';
import type { LocalIsolation, ServiceConfig } from '../core/config.js';
import { listCeQueues, openDb, upsertCeQueue, upsertComputingElement, upsertSite, type DbHandle } from '../db/index.js';
import type { Agent } from '../agents/agent.js';
import { LocalComputingElement, resolveLocalUser, type LocalPilotUser } from '../agents/computing-elements/local.js';
import { ComputingElements } from '../agents/computing-elements/index.js';
import { packageRoot } from '../agents/package-root.js';
import { AgentRunner, standardAgents, type AgentRunnerOptions } from '../agents/runner.js';
import { createSiteDirector } from '../agents/site-director.js';
import { loadPilotBundle } from '../services/pilot-bundle.js';
import { SandboxStore } from '../services/sandbox-store.js';
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
  close(): Promise<void>;
}

export interface SystemOptions {
  logger?: boolean;
  /** Where pilot.tar.gz is (default: dist/pilot of this package). */
  pilotBundleDir?: string;
  /** Start the agents' schedules (default true; tests drive ticks with `runner.runOnce`). */
  schedule?: boolean;
  /** Extra environment for local pilots (tests). */
  localPilotEnv?: Record<string, string>;
  /** Extra environment for the CE drivers' commands (tests put fake batch commands on PATH). */
  ceEnv?: Record<string, string>;
  log?: (line: string) => void;
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
  o: { ces: ComputingElements; bundleDir: string; serverUrl: string; log: (line: string) => void; onTick?: AgentRunnerOptions['onTick'] },
): Promise<AgentRunner> {
  const signer = await TokenSigner.open(db, { issuer: config.tokens.issuer });
  // Drivers for every registered CE now, so that the pilot-status agent knows them from its first tick.
  for (const q of await listCeQueues(db)) o.ces.driverFor({ type: q.ceType, name: q.ce, settings: q.ceSettings });
  const agents: Agent[] = [
    createSiteDirector(
      {
        drivers: (c) => o.ces.driverFor(c),
        signPilotToken: async (p) => (await signer.sign(p, config.tokens.pilotTtlSeconds)).token,
        bundleSha256: async () => (await loadPilotBundle(o.bundleDir))?.sha256 ?? null,
        serverUrl: () => config.publicUrl ?? o.serverUrl,
      },
      config.agentSettings.siteDirector.schedule,
    ),
    ...standardAgents(config, {
      drivers: (type, name) => o.ces.known(type, name),
      removeSandboxFiles: (shas) => new SandboxStore(join(config.dataDir, 'sandboxes'), config.sandboxMaxBytes).remove(shas),
    }),
  ];
  return new AgentRunner({ db, config, agents, log: o.log, ...(o.onTick ? { onTick: o.onTick } : {}) });
}

/** The drivers of this process: the local CE (when served here) and one per registered remote CE. */
function computingElements(config: Readonly<ServiceConfig>, localCe: LocalComputingElement | null, env?: Record<string, string>): ComputingElements {
  return new ComputingElements({
    workDir: join(config.dataDir, 'ce'),
    local: localCe ? { name: LOCAL_SITE.ce, driver: localCe } : null,
    ...(env ? { env } : {}),
  });
}

const defaultBundleDir = () => join(packageRoot(), 'dist', 'pilot');
const stderrLog = (line: string) => process.stderr.write(`${line}\n`);

export async function startSystem(config: Readonly<ServiceConfig>, opts: SystemOptions = {}): Promise<RunningSystem> {
  const log = opts.log ?? stderrLog;
  const bundleDir = opts.pilotBundleDir ?? defaultBundleDir();
  const events = new EventEmitter();
  // Refused before anything starts when the local pilots' user is missing (the server is root).
  const runAs = config.localSite ? localPilotUser(config) : null;
  const server = await startServer(config, { logger: opts.logger ?? false, pilotBundleDir: bundleDir, events, warn: log });
  let localCe: LocalComputingElement | null = null;
  let ces: ComputingElements | null = null;
  let runner: AgentRunner | null = null;
  try {
    localCe = await localSiteOf(server.db, config, runAs, opts.localPilotEnv);
    ces = computingElements(config, localCe, opts.ceEnv);
    if (config.agents) {
      // Each tick reaches the services' /metrics (wms_agent_tick_*) through the in-process events.
      const onTick: AgentRunnerOptions['onTick'] = (agent, tick) => events.emit(AGENT_TICK_EVENT, agent, tick);
      const r = await agentRunner(server.db, config, { ces, bundleDir, serverUrl: server.url, log, onTick });
      runner = r;
      if (opts.schedule !== false) {
        r.start();
        // New work should not wait for the next cycle: one site-director tick right away.
        let pending = false;
        events.on('jobs-submitted', () => {
          if (pending) return;
          pending = true;
          setTimeout(() => {
            pending = false;
            r.runOnce('site-director').catch((e: unknown) => log(`site-director: ${(e as Error).message}`));
          }, 200).unref();
        });
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
  return {
    server,
    runner,
    localCe: ce,
    computingElements: drivers,
    localSlots: localSlotsOf(config),
    close: async () => {
      await runner?.stop();
      await ce?.close();
      await drivers.close();
      await server.close();
    },
  };
}

export interface RunningAgents {
  runner: AgentRunner;
  close(): Promise<void>;
}

/**
 * The agents alone, on the configured database (`wms server agents`): for operators who run the
 * services elsewhere. Pilots call home to `publicUrl` (or host:port of the config).
 */
export async function startAgents(config: Readonly<ServiceConfig>, opts: { log?: (line: string) => void } = {}): Promise<RunningAgents> {
  const log = opts.log ?? stderrLog;
  // The local site's files and the CE drivers' work dirs are in the data dir on every database.
  await prepareDataDir(config.dataDir, log);
  const runAs = config.localSite ? localPilotUser(config) : null;
  const db = await openDb(databaseTarget(config), { poolSize: 4 });
  try {
    const localCe = await localSiteOf(db, config, runAs);
    const ces = computingElements(config, localCe);
    const runner = await agentRunner(db, config, {
      ces,
      bundleDir: defaultBundleDir(),
      serverUrl: `http://${config.host}:${config.port}`,
      log,
    });
    return {
      runner,
      close: async () => {
        await runner.stop();
        await localCe?.close();
        await ces.close();
        await db.close();
      },
    };
  } catch (e) {
    await db.close();
    throw e;
  }
}
