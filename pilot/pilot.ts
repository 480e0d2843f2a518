/**
 * The pilot: reads what the wrapper handed over (PILOT_ENV), fetches its settings, runs its
 * commands in order (check-environment, clock-skew, db12, register, job-agent by default;
 * the list is per CE type in the services' config) and reports its end. A command that finds
 * the node unfit stops the pilot with that command's exit code, and the reason is recorded on
 * the pilot for the site admin ("clock skew 61.2 s (limit 5 s)").
 *
 * SIGTERM drains (no new work; running jobs finish); a second one (more than 2 s later) kills
 * the jobs: each payload's tree gets SIGTERM, then SIGKILL after the job wrapper's grace, and the
 * pilot ends. A SIGTERM or SIGINT before the job agent runs stops the pilot after the command
 * under way, with its final report (it never dies silently, leaving its record Running). Once
 * the commands are over, signals are ignored (logged) while the pilot makes its final report and
 * exits: an idle pilot drains within milliseconds, and the wrapper's copy of a process group's
 * signal used to kill it then, its report unsent and its exit 143. Its exit code is written to
 * `PILOT_EXIT_CODE_FILE` for the wrapper.
 *
 * The pilot token is held in memory only: the wrapper hands over a 0600 file
 * (`WMS_PILOT_TOKEN_FILE`), which the pilot reads and deletes before anything else runs; it is
 * never in an environment a payload could read. Payloads get an environment built from
 * nothing (`payloadEnv`), never a copy of the pilot's.
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { PILOT_ENV, type EnvironmentReport, type PilotCommandName, type PilotConfig } from '../core/pilot-protocol.js';
import { PilotApi } from './client.js';
import { checkEnvironment } from './commands/check-environment.js';
import { checkClockSkew, measureClockOffset } from './commands/clock-skew.js';
import { isPilotCommandError, PILOT_COMMAND_EXIT_CODES, PilotCommandError } from './commands/command-error.js';
import { runDb12 } from './commands/db12.js';
import { JobAgent } from './job-agent.js';
import { PushChannel } from './push-channel.js';
import { RemoteLog } from './remote-log.js';

/** Exit codes of the pilot itself (commands have theirs in commands/command-error.ts). */
export const PILOT_EXIT = { ok: 0, unexpected: 1, badEnvironment: 2, noConfig: 3 } as const;

/**
 * The file in the work dir where the pilot, its final report made, writes the exit code it
 * exits with: the wrapper's exit code when node's own status says a signal (pilot/wrapper.sh).
 * Node can die of a SIGTERM that arrives while it exits (its handlers are gone by then), and
 * bash's `wait` can misreport a status after a trap interrupted it.
 */
export const PILOT_EXIT_CODE_FILE = 'pilot-exit-code';

interface State {
  environment?: EnvironmentReport;
  clockOffsetSeconds?: number;
  db12?: number;
  db12Details?: Record<string, unknown>;
  reason: string;
}

export interface PilotRun {
  exitCode: number;
  reason: string;
}

/** Runs the pilot with `env` (normally `process.env`); resolves to its exit code and reason. */
export async function runPilot(env: NodeJS.ProcessEnv, signals: NodeJS.EventEmitter = process): Promise<PilotRun> {
  const clockOffsetMs = Number(env[PILOT_ENV.clockOffset] ?? 0) * 1000 || 0;
  const now = () => Date.now() + clockOffsetMs;
  const log = new RemoteLog(now);
  const url = env[PILOT_ENV.url];
  const token = await takeToken(env[PILOT_ENV.tokenFile]);
  const workDir = env[PILOT_ENV.workDir] ?? process.cwd();
  if (!url || !token) {
    log.log(`pilot: ${PILOT_ENV.url} and ${PILOT_ENV.tokenFile} (a readable token file) must be set (the wrapper sets them)`);
    return { exitCode: PILOT_EXIT.badEnvironment, reason: 'missing environment' };
  }
  const api = new PilotApi(url.replace(/\/+$/, ''), token);
  const started = now();
  log.log(`pilot ${env[PILOT_ENV.stamp] ?? ''} starting on ${hostname()} in ${workDir} (node ${process.version})`);

  let config: PilotConfig;
  try {
    config = await api.config();
  } catch (e) {
    log.log(`pilot: cannot read its settings: ${(e as Error).message}`);
    return { exitCode: PILOT_EXIT.noConfig, reason: (e as Error).message };
  }
  log.connect((batch) => api.logs(batch), { batchLines: config.logBatchLines, flushSeconds: config.logFlushSeconds });
  await replayWrapperLog(env, log);
  log.log(`pilot ${config.pilotId} of ${config.site}/${config.ce}/${config.queue}: commands ${config.commands.join(', ')}`);

  const state: State = { reason: '' };
  // Signals from the start: before the job agent runs, one stops the pilot after the current
  // command; while it runs, the first drains it and a later one kills the jobs. A batch system
  // may signal the whole job (wrapper and pilot) at once, and the wrapper passes its signal on:
  // a repeat within 2 s is the same request, not "kill the jobs".
  let agentNow: JobAgent | null = null;
  let stopRequested: string | null = null;
  let firstSignalAt: number | null = null;
  const onSignal = (sig: string) => {
    if (firstSignalAt === null) {
      firstSignalAt = Date.now();
      stopRequested = `${sig} received`;
      log.log(`pilot: ${sig} received${agentNow ? '' : ', stopping after the current command'}`);
      agentNow?.drain(`${sig} received`);
    } else if (Date.now() - firstSignalAt > 2000) {
      log.log(`pilot: ${sig} again, killing the running jobs`);
      agentNow?.killAll();
    }
  };
  const onTerm = () => onSignal('SIGTERM');
  const onInt = () => onSignal('SIGINT');
  signals.on('SIGTERM', onTerm);
  signals.on('SIGINT', onInt);
  const fsType = env[PILOT_ENV.fsType] ?? 'unknown';
  const commands: Record<PilotCommandName, () => Promise<void>> = {
    'check-environment': async () => {
      state.environment = await checkEnvironment({ workDir, fsType, minDiskMb: config.minDiskMb, env });
      const e = state.environment;
      log.log(
        `environment: ${e.os}, kernel ${e.kernel}, ${e.cores} x ${e.cpuModel}, ${Math.round(e.memoryMb)} MB, ${Math.round(e.diskFreeMb)} MB free on ${e.fsType}, batch ${e.batchSystem}`,
      );
    },
    'clock-skew': async () => {
      const m = await measureClockOffset({ fetchServerTime: () => api.serverTime(), now, samples: config.clockSamples });
      state.clockOffsetSeconds = m.offsetSeconds;
      log.log(`clock: offset ${m.offsetSeconds.toFixed(3)} s (round trip ${m.roundTripMs.toFixed(1)} ms)`);
      checkClockSkew(m, config.maxClockSkewSeconds);
    },
    db12: async () => {
      const r = await runDb12({ copies: config.processors });
      state.db12 = r.score;
      state.db12Details = { ...r };
      log.log(`db12: ${r.score} (raw ${r.raw.join(', ')}; ${r.copies} cop${r.copies === 1 ? 'y' : 'ies'}, ${r.method})`);
    },
    register: async () => {
      const answer = await api
        .register({
          environment: state.environment ?? minimalEnvironment(workDir, fsType),
          clockOffsetSeconds: state.clockOffsetSeconds ?? 0,
          benchmark: state.db12 ?? 1,
          ...(state.db12Details ? { benchmarkDetails: state.db12Details } : {}),
        })
        .catch((e: unknown) => {
          throw new PilotCommandError('register', `registration failed: ${(e as Error).message}`, PILOT_COMMAND_EXIT_CODES.register);
        });
      if (answer.status !== 'Running') {
        throw new PilotCommandError('register', `refused by the services: ${answer.reason}`, PILOT_COMMAND_EXIT_CODES.register);
      }
      log.log(`registered as pilot ${answer.pilotId}`);
    },
    'job-agent': async () => {
      const agent = new JobAgent({
        api,
        config,
        db12: state.db12 ?? 1,
        workDir,
        startedAt: started,
        now,
        log: (line) => log.log(line),
        env: payloadEnv(env, url, config),
        isolation: {
          mode: config.isolation ?? 'auto',
          payloadUser: config.payloadUser ?? 'nobody',
          bwrapPath: config.bwrapPath ?? null,
          hostPath: env['PATH'] ?? '',
        },
        parameters: { HostName: hostname(), PilotReference: config.stamp, GridCE: config.ce, CEQueue: config.queue, Site: config.site },
      });
      // Reconnects with the pilot's current (renewed) token, never the wrapper's stale one.
      const push = new PushChannel(url, () => api.token, {
        commands: (c) => agent.deliver(c),
        work: () => agent.nudge(),
        log: (m) => log.log(m),
      });
      agentNow = agent;
      if (stopRequested !== null) agent.drain(stopRequested);
      push.open();
      try {
        const result = await agent.run();
        if (result.fatal) throw new PilotCommandError('job-agent', result.reason, PILOT_COMMAND_EXIT_CODES['job-agent']);
        state.reason = `${result.reason}; ${result.jobs.length} job(s) run`;
      } finally {
        push.close();
        agentNow = null;
      }
    },
  };

  let run: PilotRun;
  try {
    for (const name of config.commands) {
      if (stopRequested !== null) {
        state.reason = `stopped before ${name}: ${stopRequested}`;
        break;
      }
      const t0 = Date.now();
      await commands[name]();
      log.log(`${name}: done in ${((Date.now() - t0) / 1000).toFixed(2)} s`);
    }
    run = { exitCode: PILOT_EXIT.ok, reason: state.reason || 'commands done' };
  } catch (e) {
    run = isPilotCommandError(e)
      ? { exitCode: e.exitCode, reason: e.reason }
      : { exitCode: PILOT_EXIT.unexpected, reason: `unexpected error: ${(e as Error).message}` };
    log.log(`pilot stops: ${run.reason}`);
  } finally {
    signals.off('SIGTERM', onTerm);
    signals.off('SIGINT', onInt);
  }
  // From here to the process's exit a signal must not kill the pilot: its work is over and its
  // final report (with the exit code it will exit with) is what remains. Without a handler the
  // default action would end node with 143 (SIGTERM) before or during that report, and the
  // record would be left to the CE's guess. It happens on every stop of an idle pilot: a pilot
  // with no job drains at once, and the wrapper's copy of a process group's SIGTERM (or a batch
  // system's second signal) comes milliseconds later. The report is bounded (a minute past the
  // pilot's end); a pilot that must go now gets SIGKILL. The handlers stay for the rest of the
  // process (signal listeners do not keep node alive): a signal between the report and node's
  // exit must not turn the exit code the pilot reported into 143 either.
  let ended = false;
  const onLate = (sig: string) => {
    if (!ended) log.log(`pilot: ${sig} received while ending: ignored (the final report is under way)`);
  };
  signals.on('SIGTERM', () => onLate('SIGTERM'));
  signals.on('SIGINT', () => onLate('SIGINT'));
  // The log goes first: once the pilot is final its token no longer works, for logs too.
  log.log(`pilot ends: ${run.reason} (exit code ${run.exitCode})`);
  await log.flush();
  await api
    .status({ status: run.exitCode === 0 ? 'Done' : 'Failed', reason: run.reason, exitCode: run.exitCode })
    .catch((e: unknown) => log.log(`final status not sent: ${(e as Error).message}`));
  api.close();
  await log.close();
  await writeFile(join(workDir, PILOT_EXIT_CODE_FILE), `${run.exitCode}\n`, { mode: 0o600 }).catch(() => undefined);
  ended = true;
  return run;
}

/** The wrapper's own log lines, sent first so that the remote log tells the whole story. */
async function replayWrapperLog(env: NodeJS.ProcessEnv, log: RemoteLog): Promise<void> {
  const path = env[PILOT_ENV.wrapperLog];
  if (!path) return;
  try {
    const text = await readFile(path, 'utf8');
    for (const line of text.split('\n').filter(Boolean)) log.log(`wrapper: ${line}`);
  } catch {
    // no wrapper log: nothing to replay
  }
}

/**
 * Reads the pilot token from the file the wrapper wrote and deletes the file at once: the token
 * then lives in this process's memory only. Undefined when there is no such file.
 */
async function takeToken(file: string | undefined): Promise<string | undefined> {
  if (!file) return undefined;
  try {
    return (await readFile(file, 'utf8')).trim() || undefined;
  } catch {
    return undefined;
  } finally {
    await rm(file, { force: true }).catch(() => undefined);
  }
}

/**
 * What every payload of this pilot gets besides its sandbox's PATH, HOME, TMPDIR, USER and
 * LOGNAME and its job's variables (job-wrapper.ts): the locale, the queue's payload
 * environment, and the server URL. Nothing else of the pilot's own environment.
 */
function payloadEnv(env: NodeJS.ProcessEnv, url: string, config: PilotConfig): Record<string, string> {
  const out: Record<string, string> = {};
  for (const k of ['LANG', 'LC_ALL']) {
    const v = env[k];
    if (v) out[k] = v;
  }
  Object.assign(out, config.payloadEnvironment ?? {});
  out['WMS_URL'] = url;
  return out;
}

function minimalEnvironment(workDir: string, fsType: string): EnvironmentReport {
  return {
    hostname: hostname(),
    os: process.platform,
    kernel: '',
    cpuModel: '',
    cores: 1,
    memoryMb: 0,
    workDir,
    fsType,
    diskFreeMb: 0,
    gpus: [],
    nodeVersion: process.version,
    batchSystem: 'unknown',
    batchJobId: null,
  };
}
