/**
 * The services' configuration: one frozen object built once in `main()` and passed down.
 * Sources, later wins: defaults < config file (JSON) < environment (`WMS_*`) < command-line
 * flags. Nothing below `main()` reads `process.env`; this module is pure (the caller reads the
 * file and hands over the environment as a plain record).
 */
import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import { WmsError } from './errors.js';
import { DEFAULT_JOB_LIMITS, type JobLimits } from './job-model.js';
import { PILOT_COMMANDS } from './pilot-protocol.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface TokenConfig {
  /** `iss` and `aud` of every token this deployment signs and accepts. */
  issuer: string;
  /** Default lifetime of a token issued to a person (seconds). */
  userTtlSeconds: number;
  /** Lifetime of the admin token written to `<dataDir>/admin.token` on first start. */
  adminTtlSeconds: number;
  /**
   * Lifetime of a job token minted at match time; the heartbeat and status answers renew it
   * past half-life, and it dies with the job's final state whatever its expiry.
   */
  jobTtlSeconds: number;
  /**
   * Lifetime of the pilot token put in the wrapper: it must outlive a batch-queue wait, and dies
   * as soon as the pilot is final.
   */
  pilotTtlSeconds: number;
  /** Lifetime of the tokens a registered pilot renews itself (`POST /api/pilots/self/token`). */
  pilotSessionTtlSeconds: number;
  /** How often each replica reads new rows of the revocation table (seconds). */
  revocationPollSeconds: number;
  /** The longest lifetime `POST /api/tokens` grants. */
  maxTtlSeconds: number;
}

/** The agents: when each runs (node-cron expressions, seconds field first) and their limits. */
export interface AgentsConfig {
  siteDirector: {
    schedule: string;
    /** CE health: this many finished pilots of a queue failing in a row pause it. */
    pauseAfterFailedPilots: number;
    /** The first pause; each further pause in a row doubles it, up to `maxPauseSeconds`. */
    pauseSeconds: number;
    maxPauseSeconds: number;
  };
  pilotStatus: {
    schedule: string;
    /** A pilot the CE calls Unknown for this long becomes Aborted (DIRAC: 1 h). */
    unknownToAbortedSeconds: number;
    /** A live pilot not heard of for this long becomes Deleted (DIRAC: 3 days). */
    silentToDeletedSeconds: number;
  };
  stalledJobs: {
    schedule: string;
    /** Running/Completing with no heartbeat for this long -> Stalled (minutes, not DIRAC's hours). */
    stalledAfterSeconds: number;
    /** Stalled for this long with its pilot still alive -> Failed. */
    failedAfterSeconds: number;
    /** Matched but never started for this long -> rescheduled (DIRAC: 7200 s). */
    matchedTimeoutSeconds: number;
  };
  jobCleaning: {
    schedule: string;
    /** Done, Failed and Killed jobs older than this are Deleted, then removed (DIRAC: 7 days). */
    retentionSeconds: number;
    batchSize: number;
  };
  accounting: {
    schedule: string;
    /** Finished jobs recorded per statement. */
    batchSize: number;
  };
  /** How long a tick's lease lasts before another process may take it over. */
  leaseSeconds: number;
}

/** What the services tell pilots (`GET /api/pilots/self/config`) and how the local site runs. */
export interface PilotSettings {
  /** Commands per CE type; `default` for types not listed. */
  commands: Record<string, string[]>;
  maxClockSkewSeconds: number;
  clockSamples: number;
  minDiskMb: number;
  minTimeLeftSeconds: number;
  pollSeconds: number;
  maxPollSeconds: number;
  stopAfterFailedMatches: number;
  heartbeatSeconds: number;
  logBatchLines: number;
  logFlushSeconds: number;
  sandboxMaxEntries: number;
  /** Pilots of the local site at once (0: one per core). */
  localSlots: number;
  /**
   * The Unix user local pilots run as when the server runs as root (default `nobody`): never
   * root, so a payload cannot read the server's data directory. Ignored when the server is not
   * root (pilots then run as the server's user).
   */
  localUser: string;
  /**
   * How the local site's payloads are isolated from their pilots (the local queue's `isolation`):
   * `auto` (default: bubblewrap, else a separate user under a root pilot, else jobs are refused),
   * `bwrap`, `user`, or `none` for a single-user laptop without bubblewrap.
   */
  localIsolation: LocalIsolation;
}

/** How payloads may be isolated from their pilot: a queue's `isolation` (core/site-config.ts) and the local site's. */
export const LOCAL_ISOLATIONS = ['auto', 'bwrap', 'user', 'none'] as const;
export type LocalIsolation = (typeof LOCAL_ISOLATIONS)[number];

/**
 * Requests per caller per window on the routes that cost most or guard identity: keyed by the
 * token's (VO, user) where there is one, else by the address. 0 switches a limit off.
 */
export interface RateLimitConfig {
  /** The window the counts below are per (seconds). */
  windowSeconds: number;
  /** `POST /api/tokens` per caller. */
  tokens: number;
  /** `POST /api/jobs` per caller (bulk submissions count once). */
  submissions: number;
  /** `PUT /api/sandboxes/:sha256` per caller. */
  uploads: number;
  /** Failed authentications (401) per address; past it the address gets 429 on routes that need a token. */
  failedAuth: number;
}

export interface ServiceConfig {
  host: string;
  port: number;
  /** Holds `admin.token`, `sandboxes/` and (default database) `db/`. Absolute once resolved. */
  dataDir: string;
  /** `postgres://…`, or null for an embedded PGlite database in `<dataDir>/db`. */
  databaseUrl: string | null;
  /** Connections in the PostgreSQL pool of this process (PGlite has one). */
  dbPoolSize: number;
  /** Run the agents (site director, pilot status, stalled jobs, cleaning) in this process. */
  agents: boolean;
  /** Register the local site (pilots as child processes of this machine) and serve it. */
  localSite: boolean;
  /**
   * How long a stopping server lets the running payloads of its local pilots finish (seconds;
   * 0: stop them at once) before it stops them and reschedules their jobs.
   */
  shutdownGraceSeconds: number;
  /** The URL pilots use to call home (default: the URL the server listens on). */
  publicUrl: string | null;
  /** When set, `/metrics` needs `Authorization: Bearer <it>` (env only: `WMS_METRICS_TOKEN`). */
  metricsToken: string | null;
  agentSettings: AgentsConfig;
  pilot: PilotSettings;
  logLevel: LogLevel;
  jobLimits: JobLimits;
  /** Largest sandbox archive accepted (bytes); DiracX's MAX_SANDBOX_SIZE_BYTES is 100 MiB. */
  sandboxMaxBytes: number;
  /** Largest JSON request body (bytes): a list of 10,000 JDLs needs a few MiB. */
  requestBodyMaxBytes: number;
  /** Largest single JDL (bytes, UTF-8): a bigger one is answered 413 before it is parsed. */
  jdlMaxBytes: number;
  /**
   * Accept `Site` names that are not in the site registry (default false: an unknown site is
   * refused at submission, as DIRAC refuses a site its configuration does not list). For a
   * registry that is filled after users start submitting; such jobs wait until the site exists.
   */
  allowUnregisteredSites: boolean;
  /** Per-caller request limits of the token, submission and upload routes. */
  rateLimit: RateLimitConfig;
  /**
   * Addresses (or CIDRs, comma-separated) of the load balancers in front of this replica, whose
   * X-Forwarded-For is believed; null: the peer's address is the caller's. Needed behind HAProxy
   * so that per-address limits count clients, not the balancer.
   */
  trustProxy: string | null;
  /** Page size of job listings: default and maximum. */
  listDefaultLimit: number;
  listMaxLimit: number;
  tokens: TokenConfig;
  /** The identity of the admin token written on first start. */
  bootstrapAdmin: { user: string; vo: string; group: string };
}

const DAY = 86_400;

export const DEFAULT_SERVICE_CONFIG: Readonly<ServiceConfig> = deepFreeze({
  host: '127.0.0.1',
  port: 8080,
  dataDir: './var',
  databaseUrl: null,
  dbPoolSize: 20,
  agents: true,
  localSite: true,
  shutdownGraceSeconds: 600,
  publicUrl: null,
  metricsToken: null,
  agentSettings: {
    siteDirector: { schedule: '*/10 * * * * *', pauseAfterFailedPilots: 5, pauseSeconds: 300, maxPauseSeconds: 6 * 3600 },
    pilotStatus: { schedule: '*/30 * * * * *', unknownToAbortedSeconds: 3600, silentToDeletedSeconds: 3 * DAY },
    stalledJobs: {
      schedule: '*/30 * * * * *',
      stalledAfterSeconds: 5 * 60,
      failedAfterSeconds: 15 * 60,
      matchedTimeoutSeconds: 10 * 60,
    },
    jobCleaning: { schedule: '0 17 * * * *', retentionSeconds: 7 * DAY, batchSize: 500 },
    accounting: { schedule: '0 * * * * *', batchSize: 5000 },
    leaseSeconds: 120,
  },
  pilot: {
    commands: { default: ['check-environment', 'clock-skew', 'db12', 'register', 'job-agent'] },
    maxClockSkewSeconds: 5,
    clockSamples: 5,
    minDiskMb: 2560,
    minTimeLeftSeconds: 300,
    pollSeconds: 2,
    maxPollSeconds: 60,
    stopAfterFailedMatches: 10,
    heartbeatSeconds: 30,
    logBatchLines: 200,
    logFlushSeconds: 5,
    sandboxMaxEntries: 10_000,
    localSlots: 0,
    localUser: 'nobody',
    localIsolation: 'auto',
  },
  logLevel: 'info',
  jobLimits: { ...DEFAULT_JOB_LIMITS },
  sandboxMaxBytes: 100 * 1024 * 1024,
  requestBodyMaxBytes: 16 * 1024 * 1024,
  jdlMaxBytes: 1024 * 1024,
  allowUnregisteredSites: false,
  // High enough for the benchmarks (bulk submissions back to back) and the test suites.
  rateLimit: { windowSeconds: 60, tokens: 300, submissions: 1200, uploads: 1200, failedAuth: 300 },
  trustProxy: null,
  listDefaultLimit: 100,
  listMaxLimit: 1000,
  tokens: {
    issuer: 'pilot-wms',
    userTtlSeconds: 30 * DAY,
    adminTtlSeconds: 365 * DAY,
    // Short, renewed by heartbeats (every 30 s) past half-life: a stolen job token is worth an hour.
    jobTtlSeconds: 3600,
    pilotTtlSeconds: 7 * DAY,
    pilotSessionTtlSeconds: 3600,
    revocationPollSeconds: 2,
    maxTtlSeconds: 400 * DAY,
  },
  bootstrapAdmin: { user: 'admin', vo: 'local', group: 'admin' },
});

// ---------------------------------------------------------------------------------------------
// Units

const DURATION_UNITS: Record<string, number> = { s: 1, m: 60, h: 3600, d: DAY, w: 7 * DAY };

/** The longest duration accepted anywhere (100 years): a date that far back is still a Date. */
export const MAX_DURATION_SECONDS = 100 * 365 * DAY;

/**
 * Seconds in `30d`, `12h`, `15m`, `45s`, `2w` or a bare number of seconds; null if malformed
 * or longer than MAX_DURATION_SECONDS (`1e30d`, `99999999999999d`).
 */
export function parseDuration(text: string): number | null {
  const m = /^\s*(\d{1,16})\s*([smhdw]?)\s*$/i.exec(text);
  if (!m) return null;
  const n = Number(m[1]) * (DURATION_UNITS[(m[2] || 's').toLowerCase()] ?? 1);
  return Number.isSafeInteger(n) && n > 0 && n <= MAX_DURATION_SECONDS ? n : null;
}

const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1000,
  kib: 1024,
  m: 1024 ** 2,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/** Bytes in `100MiB`, `1GiB`, `500kB`, `2M` (binary) or a bare number; null if malformed. */
export function parseSize(text: string): number | null {
  const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(text);
  if (!m) return null;
  const unit = SIZE_UNITS[(m[2] ?? '').toLowerCase()];
  if (unit === undefined) return null;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n) && n > 0 ? n : null;
}

// ---------------------------------------------------------------------------------------------
// The config file

const Duration = Type.Union([Type.Integer({ minimum: 1 }), Type.String()]);
const Size = Type.Union([Type.Integer({ minimum: 1 }), Type.String()]);
const Strict = { additionalProperties: false } as const;

/** The optional JSON config file: every key optional; durations and sizes as numbers or text. */
export const ConfigFileSchema = Type.Object(
  {
    host: Type.Optional(Type.String()),
    port: Type.Optional(Type.Integer({ minimum: 0, maximum: 65535 })),
    dataDir: Type.Optional(Type.String()),
    databaseUrl: Type.Optional(Type.Union([Type.String(), Type.Null()])),
    dbPoolSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 500 })),
    agents: Type.Optional(Type.Boolean()),
    localSite: Type.Optional(Type.Boolean()),
    shutdownGrace: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.String()])),
    logLevel: Type.Optional(Type.Enum(LOG_LEVELS)),
    jobLimits: Type.Optional(
      Type.Object(
        {
          maxParametricJobs: Type.Optional(Type.Integer({ minimum: 1 })),
          maxJobsPerSubmission: Type.Optional(Type.Integer({ minimum: 1 })),
          defaultCpuTime: Type.Optional(Type.Integer({ minimum: 1 })),
          minCpuTime: Type.Optional(Type.Integer({ minimum: 0 })),
          maxCpuTime: Type.Optional(Type.Integer({ minimum: 1 })),
          defaultPriority: Type.Optional(Type.Integer()),
          minPriority: Type.Optional(Type.Integer()),
          maxPriority: Type.Optional(Type.Integer()),
          maxInputData: Type.Optional(Type.Integer({ minimum: 0 })),
          minProcessors: Type.Optional(Type.Integer({ minimum: 1 })),
          maxProcessors: Type.Optional(Type.Integer({ minimum: 1 })),
          allowedJobTypes: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
          cpuSegments: Type.Optional(Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1 })),
          maxRescheduling: Type.Optional(Type.Integer({ minimum: 0 })),
        },
        Strict,
      ),
    ),
    publicUrl: Type.Optional(Type.Union([Type.String({ pattern: '^https?://' }), Type.Null()])),
    agentSettings: Type.Optional(
      Type.Object(
        {
          siteDirector: Type.Optional(
            Type.Object(
              {
                schedule: Type.Optional(Type.String()),
                pauseAfterFailedPilots: Type.Optional(Type.Integer({ minimum: 1 })),
                pauseSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
                maxPauseSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
              },
              Strict,
            ),
          ),
          pilotStatus: Type.Optional(
            Type.Object(
              {
                schedule: Type.Optional(Type.String()),
                unknownToAbortedSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
                silentToDeletedSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
              },
              Strict,
            ),
          ),
          stalledJobs: Type.Optional(
            Type.Object(
              {
                schedule: Type.Optional(Type.String()),
                stalledAfterSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
                failedAfterSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
                matchedTimeoutSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
              },
              Strict,
            ),
          ),
          jobCleaning: Type.Optional(
            Type.Object(
              {
                schedule: Type.Optional(Type.String()),
                retentionSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
                batchSize: Type.Optional(Type.Integer({ minimum: 1 })),
              },
              Strict,
            ),
          ),
          accounting: Type.Optional(
            Type.Object(
              {
                schedule: Type.Optional(Type.String()),
                batchSize: Type.Optional(Type.Integer({ minimum: 1 })),
              },
              Strict,
            ),
          ),
          leaseSeconds: Type.Optional(Type.Integer({ minimum: 1 })),
        },
        Strict,
      ),
    ),
    pilot: Type.Optional(
      Type.Object(
        {
          commands: Type.Optional(Type.Record(Type.String(), Type.Array(Type.String()))),
          maxClockSkewSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
          clockSamples: Type.Optional(Type.Integer({ minimum: 1 })),
          minDiskMb: Type.Optional(Type.Number({ minimum: 0 })),
          minTimeLeftSeconds: Type.Optional(Type.Number({ minimum: 0 })),
          pollSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
          maxPollSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
          stopAfterFailedMatches: Type.Optional(Type.Integer({ minimum: 1 })),
          heartbeatSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
          logBatchLines: Type.Optional(Type.Integer({ minimum: 1 })),
          logFlushSeconds: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
          sandboxMaxEntries: Type.Optional(Type.Integer({ minimum: 1 })),
          localSlots: Type.Optional(Type.Integer({ minimum: 0 })),
          localUser: Type.Optional(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_.-]{0,31}$' })),
          localIsolation: Type.Optional(Type.Union(LOCAL_ISOLATIONS.map((i) => Type.Literal(i)))),
        },
        Strict,
      ),
    ),
    sandboxMaxBytes: Type.Optional(Size),
    requestBodyMaxBytes: Type.Optional(Size),
    jdlMaxBytes: Type.Optional(Size),
    allowUnregisteredSites: Type.Optional(Type.Boolean()),
    trustProxy: Type.Optional(Type.Union([Type.String({ minLength: 1 }), Type.Null()])),
    rateLimit: Type.Optional(
      Type.Object(
        {
          windowSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 86_400 })),
          tokens: Type.Optional(Type.Integer({ minimum: 0 })),
          submissions: Type.Optional(Type.Integer({ minimum: 0 })),
          uploads: Type.Optional(Type.Integer({ minimum: 0 })),
          failedAuth: Type.Optional(Type.Integer({ minimum: 0 })),
        },
        Strict,
      ),
    ),
    listDefaultLimit: Type.Optional(Type.Integer({ minimum: 1 })),
    listMaxLimit: Type.Optional(Type.Integer({ minimum: 1 })),
    tokens: Type.Optional(
      Type.Object(
        {
          issuer: Type.Optional(Type.String({ minLength: 1 })),
          userTtl: Type.Optional(Duration),
          adminTtl: Type.Optional(Duration),
          jobTtl: Type.Optional(Duration),
          pilotTtl: Type.Optional(Duration),
          pilotSessionTtl: Type.Optional(Duration),
          revocationPoll: Type.Optional(Duration),
          maxTtl: Type.Optional(Duration),
        },
        Strict,
      ),
    ),
    bootstrapAdmin: Type.Optional(
      Type.Object(
        {
          user: Type.Optional(Type.String({ minLength: 1 })),
          vo: Type.Optional(Type.String({ minLength: 1 })),
          group: Type.Optional(Type.String({ minLength: 1 })),
        },
        Strict,
      ),
    ),
  },
  Strict,
);
export type ConfigFile = Static<typeof ConfigFileSchema>;

/** Command-line flags that override everything else. */
export interface ConfigFlags {
  host?: string;
  port?: number;
  dataDir?: string;
  databaseUrl?: string;
  agents?: boolean;
  localSite?: boolean;
  shutdownGraceSeconds?: number;
  logLevel?: LogLevel;
}

/** The environment variables read (documented in `wms --help`). */
export const CONFIG_ENV_VARS: Readonly<Record<string, string>> = {
  WMS_CONFIG: 'path of an optional JSON config file',
  WMS_HOST: 'address to listen on (default 127.0.0.1)',
  WMS_PORT: 'port to listen on (default 8080)',
  WMS_DATA_DIR: 'data directory (default ./var)',
  WMS_DATABASE_URL: 'postgres://… (default: PGlite in <data-dir>/db)',
  WMS_DB_POOL_SIZE: 'PostgreSQL connections of this process (default 20)',
  WMS_LOG_LEVEL: `log level: ${LOG_LEVELS.join(', ')} (default info)`,
  WMS_MAX_PARAMETRIC_JOBS: `jobs one parametric JDL may expand to (default ${DEFAULT_JOB_LIMITS.maxParametricJobs})`,
  WMS_MAX_JOBS_PER_SUBMISSION: `jobs one submission may carry (default ${DEFAULT_JOB_LIMITS.maxJobsPerSubmission})`,
  WMS_MAX_RESCHEDULING: `reschedules before a job fails (default ${DEFAULT_JOB_LIMITS.maxRescheduling})`,
  WMS_SANDBOX_MAX_SIZE: 'largest sandbox archive, e.g. 100MiB (default 100MiB)',
  WMS_JDL_MAX_SIZE: 'largest JDL, e.g. 1MiB (default 1MiB); bigger ones are answered 413',
  WMS_ALLOW_UNREGISTERED_SITES: 'accept Site names the site registry does not list: 1 or 0 (default 0: refused at submission)',
  WMS_TRUST_PROXY: 'addresses or CIDRs of the load balancers whose X-Forwarded-For is believed, comma-separated (default: none)',
  WMS_TOKEN_TTL: 'default lifetime of issued user tokens, e.g. 30d',
  WMS_JOB_TOKEN_TTL: 'lifetime of job tokens minted at match time (renewed by heartbeats), e.g. 1h',
  WMS_AGENTS: 'run the agents: 1 or 0 (default 1)',
  WMS_LOCAL_SITE: 'serve the local site: 1 or 0 (default 1)',
  WMS_SHUTDOWN_GRACE: 'how long a stopping server lets local payloads finish before it stops them, e.g. 10m, 30s or 0 (default 10m)',
  WMS_LOCAL_ISOLATION: "how the local site isolates payloads: auto, bwrap, user or none (default auto; none only on a single-user machine)",
  WMS_PUBLIC_URL: 'the URL pilots call home to (default: the address the server listens on)',
  WMS_METRICS_TOKEN: 'a secret that /metrics then requires as Authorization: Bearer (default: /metrics is open)',
};

function localIsolationOf(value: string | undefined): LocalIsolation | undefined {
  if (value === undefined || value === '') return undefined;
  if (!(LOCAL_ISOLATIONS as readonly string[]).includes(value)) {
    throw configError('WMS_LOCAL_ISOLATION', `"${value}" is not one of ${LOCAL_ISOLATIONS.join(', ')}`);
  }
  return value as LocalIsolation;
}

function configError(where: string, message: string): WmsError {
  return new WmsError('WMS_CONFIG', `${where}: ${message}`);
}

function durationOf(v: number | string | undefined, where: string): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : parseDuration(v);
  if (n === null) throw configError(where, `"${String(v)}" is not a duration (e.g. 30d, 12h, 3600)`);
  return n;
}

/** A grace period: a duration as `durationOf`, or 0 (no grace). */
export function graceOf(v: number | string | undefined, where: string): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (v === 0 || (typeof v === 'string' && /^\s*0+\s*[smhdw]?\s*$/i.test(v))) return 0;
  return durationOf(v, where);
}

function sizeOf(v: number | string | undefined, where: string): number | undefined {
  if (v === undefined) return undefined;
  const n = typeof v === 'number' ? v : parseSize(v);
  if (n === null) throw configError(where, `"${String(v)}" is not a size (e.g. 100MiB, 1048576)`);
  return n;
}

function intOf(v: string | undefined, where: string, min: number): number | undefined {
  if (v === undefined || v === '') return undefined;
  if (!/^\d+$/.test(v.trim()) || Number(v) < min || !Number.isSafeInteger(Number(v))) {
    throw configError(where, `"${v}" is not an integer >= ${min}`);
  }
  return Number(v);
}

function boolOf(v: string | undefined, where: string): boolean | undefined {
  if (v === undefined || v === '') return undefined;
  if (/^(1|true|yes|on)$/i.test(v)) return true;
  if (/^(0|false|no|off)$/i.test(v)) return false;
  throw configError(where, `"${v}" is not a boolean (1/0, true/false)`);
}

/** The config file's problems, one line each, empty when it is valid. */
export function configFileProblems(file: unknown): string[] {
  if (Value.Check(ConfigFileSchema, file)) return [];
  return Value.Errors(ConfigFileSchema, file)
    .filter((e) => e.keyword !== 'boolean')
    .map((e) => {
      const extra = (e.params as { additionalProperties?: string[] }).additionalProperties;
      const path = e.instancePath === '' ? '/' : e.instancePath;
      return extra ? `${path}: unknown key(s) ${extra.join(', ')}` : `${path}: ${e.message}`;
    });
}

function defined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export interface ConfigSources {
  /** The parsed JSON config file, if any. */
  file?: unknown;
  /** Where the file came from, for error messages. */
  fileName?: string;
  /** The environment (pass `process.env`). */
  env?: Readonly<Record<string, string | undefined>>;
  flags?: ConfigFlags;
}

/**
 * Merges defaults < file < env < flags into one deep-frozen ServiceConfig. Throws WMS_CONFIG
 * naming the source and key of the first bad value. `dataDir` is returned as given (the caller
 * resolves it against its working directory).
 */
export function resolveServiceConfig(sources: ConfigSources = {}): Readonly<ServiceConfig> {
  const d = DEFAULT_SERVICE_CONFIG;
  const fileName = sources.fileName ?? 'config file';
  const file: ConfigFile = (sources.file ?? {}) as ConfigFile;
  if (sources.file !== undefined) {
    const problems = configFileProblems(sources.file);
    if (problems.length > 0) throw configError(fileName, problems.join('; '));
  }
  const env = sources.env ?? {};
  const flags = sources.flags ?? {};
  const ft = file.tokens ?? {};

  const envLevel = env['WMS_LOG_LEVEL'];
  if (envLevel && !(LOG_LEVELS as readonly string[]).includes(envLevel)) {
    throw configError('WMS_LOG_LEVEL', `"${envLevel}" is not one of ${LOG_LEVELS.join(', ')}`);
  }
  const envPort = intOf(env['WMS_PORT'], 'WMS_PORT', 0);
  if (envPort !== undefined && envPort > 65535) throw configError('WMS_PORT', 'above 65535');
  if (flags.port !== undefined && (!Number.isInteger(flags.port) || flags.port < 0 || flags.port > 65535)) {
    throw configError('--port', `"${flags.port}" is not a port number`);
  }

  const jobLimits: JobLimits = {
    ...d.jobLimits,
    ...defined(file.jobLimits ?? {}),
    ...defined({
      maxParametricJobs: intOf(env['WMS_MAX_PARAMETRIC_JOBS'], 'WMS_MAX_PARAMETRIC_JOBS', 1),
      maxJobsPerSubmission: intOf(env['WMS_MAX_JOBS_PER_SUBMISSION'], 'WMS_MAX_JOBS_PER_SUBMISSION', 1),
      maxRescheduling: intOf(env['WMS_MAX_RESCHEDULING'], 'WMS_MAX_RESCHEDULING', 0),
    }),
  };
  if (jobLimits.minCpuTime > jobLimits.maxCpuTime) {
    throw configError('jobLimits', 'minCpuTime is above maxCpuTime');
  }

  const tokens: TokenConfig = {
    ...d.tokens,
    ...defined({
      issuer: ft.issuer,
      userTtlSeconds: durationOf(ft.userTtl, `${fileName}: tokens.userTtl`),
      adminTtlSeconds: durationOf(ft.adminTtl, `${fileName}: tokens.adminTtl`),
      jobTtlSeconds: durationOf(ft.jobTtl, `${fileName}: tokens.jobTtl`),
      pilotTtlSeconds: durationOf(ft.pilotTtl, `${fileName}: tokens.pilotTtl`),
      pilotSessionTtlSeconds: durationOf(ft.pilotSessionTtl, `${fileName}: tokens.pilotSessionTtl`),
      revocationPollSeconds: durationOf(ft.revocationPoll, `${fileName}: tokens.revocationPoll`),
      maxTtlSeconds: durationOf(ft.maxTtl, `${fileName}: tokens.maxTtl`),
    }),
    ...defined({
      userTtlSeconds: durationOf(env['WMS_TOKEN_TTL'] || undefined, 'WMS_TOKEN_TTL'),
      jobTtlSeconds: durationOf(env['WMS_JOB_TOKEN_TTL'] || undefined, 'WMS_JOB_TOKEN_TTL'),
    }),
  };

  const merged: ServiceConfig = {
    ...d,
    ...defined({
      host: file.host,
      port: file.port,
      dataDir: file.dataDir,
      databaseUrl: file.databaseUrl,
      dbPoolSize: file.dbPoolSize,
      agents: file.agents,
      localSite: file.localSite,
      shutdownGraceSeconds: graceOf(file.shutdownGrace, `${fileName}: shutdownGrace`),
      publicUrl: file.publicUrl,
      logLevel: file.logLevel,
      sandboxMaxBytes: sizeOf(file.sandboxMaxBytes, `${fileName}: sandboxMaxBytes`),
      requestBodyMaxBytes: sizeOf(file.requestBodyMaxBytes, `${fileName}: requestBodyMaxBytes`),
      jdlMaxBytes: sizeOf(file.jdlMaxBytes, `${fileName}: jdlMaxBytes`),
      allowUnregisteredSites: file.allowUnregisteredSites,
      trustProxy: file.trustProxy,
      listDefaultLimit: file.listDefaultLimit,
      listMaxLimit: file.listMaxLimit,
    }),
    ...defined({
      host: env['WMS_HOST'] || undefined,
      port: envPort,
      dataDir: env['WMS_DATA_DIR'] || undefined,
      databaseUrl: env['WMS_DATABASE_URL'] || undefined,
      dbPoolSize: intOf(env['WMS_DB_POOL_SIZE'], 'WMS_DB_POOL_SIZE', 1),
      logLevel: (envLevel || undefined) as LogLevel | undefined,
      sandboxMaxBytes: sizeOf(env['WMS_SANDBOX_MAX_SIZE'] || undefined, 'WMS_SANDBOX_MAX_SIZE'),
      jdlMaxBytes: sizeOf(env['WMS_JDL_MAX_SIZE'] || undefined, 'WMS_JDL_MAX_SIZE'),
      trustProxy: env['WMS_TRUST_PROXY'] || undefined,
      agents: boolOf(env['WMS_AGENTS'], 'WMS_AGENTS'),
      publicUrl: env['WMS_PUBLIC_URL'] || undefined,
      metricsToken: env['WMS_METRICS_TOKEN'] || undefined,
      localSite: boolOf(env['WMS_LOCAL_SITE'], 'WMS_LOCAL_SITE'),
      allowUnregisteredSites: boolOf(env['WMS_ALLOW_UNREGISTERED_SITES'], 'WMS_ALLOW_UNREGISTERED_SITES'),
      shutdownGraceSeconds: graceOf(env['WMS_SHUTDOWN_GRACE'], 'WMS_SHUTDOWN_GRACE'),
    }),
    ...defined({ ...flags }),
    jobLimits,
    tokens,
    bootstrapAdmin: { ...d.bootstrapAdmin, ...defined(file.bootstrapAdmin ?? {}) },
    rateLimit: { ...d.rateLimit, ...defined(file.rateLimit ?? {}) },
    agentSettings: mergeAgentSettings(d.agentSettings, file.agentSettings ?? {}),
    pilot: { ...d.pilot, ...defined(file.pilot ?? {}), ...defined({ localIsolation: localIsolationOf(env['WMS_LOCAL_ISOLATION']) }) } as PilotSettings,
  };
  const unknownCommands = Object.entries(merged.pilot.commands).flatMap(([type, list]) =>
    list.filter((c) => !(PILOT_COMMANDS as readonly string[]).includes(c)).map((c) => `${type}: ${c}`),
  );
  if (unknownCommands.length > 0) {
    throw configError(`${fileName}: pilot.commands`, `unknown command(s) ${unknownCommands.join(', ')} (known: ${PILOT_COMMANDS.join(', ')})`);
  }
  if (!merged.pilot.commands['default']) throw configError(`${fileName}: pilot.commands`, 'needs a "default" list');
  if (merged.databaseUrl !== null && !/^postgres(ql)?:\/\//.test(merged.databaseUrl)) {
    throw configError('database', `"${merged.databaseUrl}" is not a postgres:// URL`);
  }
  if (merged.listDefaultLimit > merged.listMaxLimit) {
    throw configError('listDefaultLimit', 'is above listMaxLimit');
  }
  return deepFreeze(merged);
}

function mergeAgentSettings(d: AgentsConfig, f: NonNullable<ConfigFile['agentSettings']>): AgentsConfig {
  return {
    siteDirector: { ...d.siteDirector, ...defined(f.siteDirector ?? {}) },
    pilotStatus: { ...d.pilotStatus, ...defined(f.pilotStatus ?? {}) },
    stalledJobs: { ...d.stalledJobs, ...defined(f.stalledJobs ?? {}) },
    jobCleaning: { ...d.jobCleaning, ...defined(f.jobCleaning ?? {}) },
    accounting: { ...d.accounting, ...defined(f.accounting ?? {}) },
    leaseSeconds: f.leaseSeconds ?? d.leaseSeconds,
  };
}

/** Freezes `o` and everything reachable from it. */
export function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}
