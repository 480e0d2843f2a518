/**
 * The services' configuration declared once: one TypeBox schema per area, each key with its
 * `default` and `description`. Everything else is derived from these schemas: the
 * `ServiceConfig` type (`Static<>`), the defaults, the config file's schema and its checks,
 * the environment variables' parsing, the help of `wms server` and README's configuration table.
 *
 * A key may carry four annotations beside `default` and `description`:
 * - `file`: its name in the config file when that differs from the code's (`shutdownGrace` for
 *   `shutdownGraceSeconds`), or `false` when the file may not set it (a secret read from the
 *   environment only);
 * - `unit`: `duration` (`30d`, `12h` or seconds), `grace` (a duration or 0) or `size`
 *   (`100MiB` or bytes): the file and the environment may write it as text;
 * - `secret`: `value` (masked whole) or `url` (its password masked) wherever it is shown;
 * - `defaultText`: how README and the help say a `null` default.
 * Pure: no I/O.
 */
import { Type, type Static, type TSchema } from 'typebox';
import { DEFAULT_JOB_LIMITS } from './job-model.js';
import { PILOT_COMMANDS } from './pilot-protocol.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** How payloads may be isolated from their pilot: a queue's `isolation` (core/site-config.ts) and the local site's. */
export const LOCAL_ISOLATIONS = ['auto', 'bwrap', 'user', 'none'] as const;
export type LocalIsolation = (typeof LOCAL_ISOLATIONS)[number];

const DAY = 86_400;
const Strict = { additionalProperties: false } as const;

// ---------------------------------------------------------------------------------------------
// Areas whose keys sit at the top of the config object

/** The HTTP server of this process and what it runs beside the services. */
export const ServerSchema = Type.Object(
  {
    host: Type.String({ default: '127.0.0.1', description: 'address to listen on' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'port to listen on (0: any free port)' }),
    dataDir: Type.String({
      default: './var',
      description:
        'data directory: admin.token, sandboxes/ (on PostgreSQL only upload temp files: the sandboxes are in the database) and (without a database URL) db/',
    }),
    publicUrl: Type.Union([Type.String({ pattern: '^https?://' }), Type.Null()], {
      default: null,
      defaultText: 'the address the server listens on',
      description: 'the URL pilots call home to',
    }),
    trustProxy: Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
      default: null,
      defaultText: 'none: the peer address is the caller',
      description:
        'addresses or CIDRs (comma-separated) of the load balancers whose X-Forwarded-For is believed, so per-address limits count clients',
    }),
    logLevel: Type.Enum(LOG_LEVELS, { default: 'info', description: `log level: ${LOG_LEVELS.join(', ')}` }),
    agents: Type.Boolean({
      default: true,
      description: 'run the agents (site director, pilot status, stalled jobs, cleaning, accounting) in this process',
    }),
    localSite: Type.Boolean({
      default: true,
      description: 'register the local site (pilots as child processes of this machine) and serve it',
    }),
    shutdownGraceSeconds: Type.Integer({
      minimum: 0,
      default: 600,
      unit: 'grace',
      file: 'shutdownGrace',
      description:
        'how long a stopping server lets the payloads of its local pilots finish before it stops them and reschedules their jobs (0: at once)',
    }),
    metricsToken: Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
      default: null,
      file: false,
      secret: 'value',
      defaultText: 'none: /metrics is open',
      description: 'a secret /metrics then requires as Authorization: Bearer (environment only)',
    }),
  },
  Strict,
);

/** Where the data lives. */
export const DatabaseSchema = Type.Object(
  {
    databaseUrl: Type.Union([Type.String(), Type.Null()], {
      default: null,
      secret: 'url',
      defaultText: 'PGlite in <dataDir>/db',
      description: 'postgres:// URL of the database',
    }),
    dbPoolSize: Type.Integer({
      minimum: 1,
      maximum: 500,
      default: 20,
      description: 'connections in the PostgreSQL pool of this process (PGlite has one)',
    }),
  },
  Strict,
);

/** What one request may carry and what the services accept. */
export const RequestsSchema = Type.Object(
  {
    sandboxMaxBytes: Type.Integer({
      minimum: 1,
      default: 100 * 1024 * 1024,
      unit: 'size',
      description: "largest sandbox archive accepted (DiracX's MAX_SANDBOX_SIZE_BYTES is 100 MiB)",
    }),
    requestBodyMaxBytes: Type.Integer({
      minimum: 1,
      default: 16 * 1024 * 1024,
      unit: 'size',
      description: 'largest JSON request body (a list of 10,000 JDLs needs a few MiB)',
    }),
    jdlMaxBytes: Type.Integer({
      minimum: 1,
      default: 1024 * 1024,
      unit: 'size',
      description: 'largest single JDL (UTF-8); a bigger one is answered 413 before it is parsed',
    }),
    allowUnregisteredSites: Type.Boolean({
      default: false,
      description:
        'accept JDL Site names the site registry does not list (such jobs wait until the site exists); else refused at submission, as DIRAC does',
    }),
    listDefaultLimit: Type.Integer({ minimum: 1, default: 100, description: 'page size of job listings when the caller names none' }),
    listMaxLimit: Type.Integer({ minimum: 1, default: 1000, description: 'largest page size of job listings' }),
  },
  Strict,
);

// ---------------------------------------------------------------------------------------------
// Areas that are objects of their own in the config object

/** When each agent runs (node-cron expressions, seconds field first) and its limits. */
export const AgentsSchema = Type.Object(
  {
    siteDirector: Type.Object(
      {
        schedule: Type.String({ default: '*/10 * * * * *', description: 'when the site director runs' }),
        pauseAfterFailedPilots: Type.Integer({
          minimum: 1,
          default: 5,
          description: 'CE health: this many finished pilots of a queue failing in a row pause it',
        }),
        pauseSeconds: Type.Integer({
          minimum: 1,
          default: 300,
          description: 'the first pause of a failing queue; each further pause in a row doubles it',
        }),
        maxPauseSeconds: Type.Integer({ minimum: 1, default: 6 * 3600, description: 'the longest pause of a failing queue' }),
      },
      Strict,
    ),
    pilotStatus: Type.Object(
      {
        schedule: Type.String({ default: '*/30 * * * * *', description: 'when the pilot status agent runs' }),
        unknownToAbortedSeconds: Type.Integer({
          minimum: 1,
          default: 3600,
          description: 'a pilot the CE calls Unknown for this long becomes Aborted (DIRAC: 1 h)',
        }),
        silentToDeletedSeconds: Type.Integer({
          minimum: 1,
          default: 3 * DAY,
          description: 'a live pilot not heard of for this long becomes Deleted (DIRAC: 3 days)',
        }),
      },
      Strict,
    ),
    stalledJobs: Type.Object(
      {
        schedule: Type.String({ default: '*/30 * * * * *', description: 'when the stalled jobs agent runs' }),
        stalledAfterSeconds: Type.Integer({
          minimum: 1,
          default: 5 * 60,
          description: 'Running/Completing with no heartbeat for this long: Stalled',
        }),
        failedAfterSeconds: Type.Integer({
          minimum: 1,
          default: 15 * 60,
          description: 'Stalled for this long with its pilot still alive: Failed',
        }),
        matchedTimeoutSeconds: Type.Integer({
          minimum: 1,
          default: 10 * 60,
          description: 'Matched but never started for this long: rescheduled (DIRAC: 7200 s)',
        }),
      },
      Strict,
    ),
    jobCleaning: Type.Object(
      {
        schedule: Type.String({ default: '0 17 * * * *', description: 'when the job cleaning agent runs' }),
        retentionSeconds: Type.Integer({
          minimum: 1,
          default: 7 * DAY,
          description: 'Done, Failed and Killed jobs older than this are Deleted, then removed (DIRAC: 7 days)',
        }),
        batchSize: Type.Integer({ minimum: 1, default: 500, description: 'jobs cleaned per statement' }),
      },
      Strict,
    ),
    accounting: Type.Object(
      {
        schedule: Type.String({ default: '0 * * * * *', description: 'when the accounting agent runs' }),
        batchSize: Type.Integer({ minimum: 1, default: 5000, description: 'finished jobs recorded per statement' }),
      },
      Strict,
    ),
    leaseSeconds: Type.Integer({
      minimum: 1,
      default: 120,
      description: "how long an agent tick's lease lasts before another process may take it over",
    }),
  },
  Strict,
);

/** What the services tell pilots (`GET /api/pilots/self/config`) and how the local site runs. */
export const PilotSchema = Type.Object(
  {
    commands: Type.Record(Type.String(), Type.Array(Type.String()), {
      default: { default: ['check-environment', 'clock-skew', 'db12', 'register', 'job-agent'] },
      description: `pilot commands per CE type, "default" for types not listed (known: ${PILOT_COMMANDS.join(', ')})`,
    }),
    maxClockSkewSeconds: Type.Number({ exclusiveMinimum: 0, default: 5, description: 'largest clock skew a pilot accepts on its node' }),
    clockSamples: Type.Integer({ minimum: 1, default: 5, description: 'requests to the server a pilot times to measure its clock skew' }),
    minDiskMb: Type.Number({
      minimum: 0,
      default: 2560,
      description: 'free disk (MB) of its work directory a pilot needs to start and to take work (0: no check)',
    }),
    minTimeLeftSeconds: Type.Number({
      minimum: 0,
      default: 300,
      description: 'time left in its batch slot below which a pilot asks for no more work',
    }),
    pollSeconds: Type.Number({ exclusiveMinimum: 0, default: 2, description: "a pilot's first wait after a match finds no job" }),
    maxPollSeconds: Type.Number({ exclusiveMinimum: 0, default: 60, description: "a pilot's longest wait between matches" }),
    stopAfterFailedMatches: Type.Integer({
      minimum: 1,
      default: 10,
      description: 'matches in a row without a job after which a pilot stops',
    }),
    heartbeatSeconds: Type.Number({ exclusiveMinimum: 0, default: 30, description: 'how often a running job reports it is alive' }),
    logBatchLines: Type.Integer({ minimum: 1, default: 200, description: "lines of a pilot's own log sent at once" }),
    logFlushSeconds: Type.Number({ exclusiveMinimum: 0, default: 5, description: 'how often a pilot sends its own log' }),
    sandboxMaxEntries: Type.Integer({
      minimum: 1,
      default: 10_000,
      description: 'entries a pilot unpacks from one sandbox archive at the most',
    }),
    localSlots: Type.Integer({ minimum: 0, default: 0, description: 'pilots of the local site at once (0: one per core)' }),
    localUser: Type.String({
      pattern: '^[A-Za-z_][A-Za-z0-9_.-]{0,31}$',
      default: 'nobody',
      description:
        "the Unix user local pilots run as when the server runs as root (never root, so a payload cannot read the server's data directory)",
    }),
    localIsolation: Type.Enum(LOCAL_ISOLATIONS, {
      default: 'auto',
      description:
        'how the local site isolates payloads from their pilots: auto (bubblewrap, else a separate user under a root pilot, else jobs are refused), bwrap, user, or none (a single-user laptop)',
    }),
  },
  Strict,
);

/** DIRAC's JobDescription limits: what a submission may ask for. */
export const JobLimitsSchema = Type.Object(
  {
    maxParametricJobs: Type.Integer({
      minimum: 1,
      default: DEFAULT_JOB_LIMITS.maxParametricJobs,
      description: 'jobs one parametric JDL may expand to',
    }),
    maxJobsPerSubmission: Type.Integer({
      minimum: 1,
      default: DEFAULT_JOB_LIMITS.maxJobsPerSubmission,
      description: 'jobs one submission may carry (a list of JDLs, or a parametric one)',
    }),
    defaultCpuTime: Type.Integer({
      minimum: 1,
      default: DEFAULT_JOB_LIMITS.defaultCpuTime,
      description: 'CPUTime of a JDL that gives none',
    }),
    minCpuTime: Type.Integer({ minimum: 0, default: DEFAULT_JOB_LIMITS.minCpuTime, description: 'smallest CPUTime accepted' }),
    maxCpuTime: Type.Integer({ minimum: 1, default: DEFAULT_JOB_LIMITS.maxCpuTime, description: 'largest CPUTime accepted' }),
    defaultPriority: Type.Integer({ default: DEFAULT_JOB_LIMITS.defaultPriority, description: 'Priority of a JDL that gives none' }),
    minPriority: Type.Integer({ default: DEFAULT_JOB_LIMITS.minPriority, description: 'smallest Priority accepted' }),
    maxPriority: Type.Integer({ default: DEFAULT_JOB_LIMITS.maxPriority, description: 'largest Priority accepted' }),
    maxInputData: Type.Integer({
      minimum: 0,
      default: DEFAULT_JOB_LIMITS.maxInputData,
      description: 'a User job lists fewer InputData files than this',
    }),
    minProcessors: Type.Integer({
      minimum: 1,
      default: DEFAULT_JOB_LIMITS.minProcessors,
      description: 'smallest number of processors a job may ask for',
    }),
    maxProcessors: Type.Integer({
      minimum: 1,
      default: DEFAULT_JOB_LIMITS.maxProcessors,
      description: 'largest number of processors a job may ask for',
    }),
    allowedJobTypes: Type.Array(Type.String(), {
      minItems: 1,
      default: [...DEFAULT_JOB_LIMITS.allowedJobTypes],
      description: 'JobType values accepted',
    }),
    cpuSegments: Type.Array(Type.Integer({ minimum: 1 }), {
      minItems: 1,
      default: [...DEFAULT_JOB_LIMITS.cpuSegments],
      description: 'CPU-time segments of task queues (normalized seconds, strictly increasing)',
    }),
    maxRescheduling: Type.Integer({
      minimum: 0,
      default: DEFAULT_JOB_LIMITS.maxRescheduling,
      description: 'reschedules before a job fails',
    }),
    maxBulkJobs: Type.Integer({
      minimum: 1,
      default: DEFAULT_JOB_LIMITS.maxBulkJobs,
      description: 'jobs one kill, reschedule or delete by filter may take (a filter that selects more is refused: narrow it)',
    }),
  },
  Strict,
);

/**
 * Requests per caller per window on the routes that cost most or guard identity: keyed by the
 * token's (VO, user) where there is one, else by the address. 0 switches a limit off. The
 * defaults are high enough for the benchmarks (bulk submissions back to back) and the tests.
 */
export const RateLimitSchema = Type.Object(
  {
    windowSeconds: Type.Integer({ minimum: 1, maximum: 86_400, default: 60, description: 'the window the rate limits count in (seconds)' }),
    tokens: Type.Integer({ minimum: 0, default: 300, description: 'POST /api/tokens per caller and window (0: no limit)' }),
    submissions: Type.Integer({
      minimum: 0,
      default: 1200,
      description: 'POST /api/jobs per caller and window; a bulk submission counts once (0: no limit)',
    }),
    uploads: Type.Integer({ minimum: 0, default: 1200, description: 'PUT /api/sandboxes/:sha256 per caller and window (0: no limit)' }),
    failedAuth: Type.Integer({
      minimum: 0,
      default: 300,
      description:
        'failed authentications (401) per address and window; past it the address gets 429 on routes that need a token (0: no limit)',
    }),
  },
  Strict,
);

/** A lifetime of the tokens area: seconds in the config object, a duration called `file` in the config file. */
function lifetime(file: string, seconds: number, description: string) {
  return Type.Integer({ minimum: 1, default: seconds, unit: 'duration', file, description });
}

/** The tokens this deployment signs: lifetimes in seconds, written in the file as durations. */
export const TokensSchema = Type.Object(
  {
    issuer: Type.String({
      minLength: 1,
      default: 'pilot-wms',
      description: '`iss` and `aud` of every token this deployment signs and accepts',
    }),
    userTtlSeconds: lifetime('userTtl', 30 * DAY, 'default lifetime of a token issued to a person'),
    adminTtlSeconds: lifetime('adminTtl', 365 * DAY, 'lifetime of the admin token written to <dataDir>/admin.token on the first start'),
    // Short, renewed by heartbeats (every 30 s) past half-life: a stolen job token is worth an hour.
    jobTtlSeconds: lifetime(
      'jobTtl',
      3600,
      "lifetime of a job token minted at match time; renewed past half-life, it dies with the job's final state",
    ),
    pilotTtlSeconds: lifetime(
      'pilotTtl',
      7 * DAY,
      'lifetime of the pilot token put in the wrapper: it outlives a batch-queue wait and dies when the pilot is final',
    ),
    pilotSessionTtlSeconds: lifetime('pilotSessionTtl', 3600, 'lifetime of the tokens a registered pilot renews itself'),
    revocationPollSeconds: lifetime('revocationPoll', 2, 'how often each replica reads new rows of the revocation table'),
    maxTtlSeconds: lifetime('maxTtl', 400 * DAY, 'the longest lifetime POST /api/tokens grants'),
  },
  Strict,
);

/** The identity of the admin token written on the first start. */
export const BootstrapAdminSchema = Type.Object(
  {
    user: Type.String({ minLength: 1, default: 'admin', description: 'user of the admin token written on the first start' }),
    vo: Type.String({ minLength: 1, default: 'local', description: 'VO of the admin token written on the first start' }),
    group: Type.String({ minLength: 1, default: 'admin', description: 'group of the admin token written on the first start' }),
  },
  Strict,
);

/** The whole configuration: the flat areas' keys at the top, the others as objects. */
export const ServiceConfigSchema = Type.Object(
  {
    ...ServerSchema.properties,
    ...DatabaseSchema.properties,
    ...RequestsSchema.properties,
    jobLimits: JobLimitsSchema,
    rateLimit: RateLimitSchema,
    tokens: TokensSchema,
    bootstrapAdmin: BootstrapAdminSchema,
    agentSettings: AgentsSchema,
    pilot: PilotSchema,
  },
  Strict,
);

export type ServiceConfigShape = Static<typeof ServiceConfigSchema>;

// ---------------------------------------------------------------------------------------------
// The environment and the command line

/**
 * Every `WMS_*` variable the services read and the key it sets; how its text is parsed follows
 * from that key's schema (integer, boolean, one of a list, duration, size, text). The order is
 * the order of the help.
 */
export const CONFIG_ENV_TABLE: Readonly<Record<string, string>> = {
  WMS_HOST: 'host',
  WMS_PORT: 'port',
  WMS_DATA_DIR: 'dataDir',
  WMS_DATABASE_URL: 'databaseUrl',
  WMS_DB_POOL_SIZE: 'dbPoolSize',
  WMS_LOG_LEVEL: 'logLevel',
  WMS_MAX_PARAMETRIC_JOBS: 'jobLimits.maxParametricJobs',
  WMS_MAX_JOBS_PER_SUBMISSION: 'jobLimits.maxJobsPerSubmission',
  WMS_MAX_RESCHEDULING: 'jobLimits.maxRescheduling',
  WMS_SANDBOX_MAX_SIZE: 'sandboxMaxBytes',
  WMS_JDL_MAX_SIZE: 'jdlMaxBytes',
  WMS_ALLOW_UNREGISTERED_SITES: 'allowUnregisteredSites',
  WMS_TRUST_PROXY: 'trustProxy',
  WMS_TOKEN_TTL: 'tokens.userTtlSeconds',
  WMS_JOB_TOKEN_TTL: 'tokens.jobTtlSeconds',
  WMS_AGENTS: 'agents',
  WMS_LOCAL_SITE: 'localSite',
  WMS_SHUTDOWN_GRACE: 'shutdownGraceSeconds',
  WMS_LOCAL_ISOLATION: 'pilot.localIsolation',
  WMS_PUBLIC_URL: 'publicUrl',
  WMS_METRICS_TOKEN: 'metricsToken',
};

/** The variable that names the config file (not a key of its own). */
export const CONFIG_FILE_ENV = 'WMS_CONFIG';

/** The command-line flags of `wms server` that set a key, and the key each sets. */
export const CONFIG_FLAG_TABLE = {
  host: '--host',
  port: '--port',
  dataDir: '--data-dir',
  databaseUrl: '--db',
  agents: '--no-agents',
  localSite: '--no-local-site',
  shutdownGraceSeconds: '--shutdown-grace',
  logLevel: '--log-level',
} as const satisfies Partial<Record<keyof ServiceConfigShape, string>>;

/** Command-line flags that override everything else. */
export type ConfigFlags = Partial<Pick<ServiceConfigShape, keyof typeof CONFIG_FLAG_TABLE>>;

// ---------------------------------------------------------------------------------------------
// Walking the schema

/** What the annotations above look like on a schema. */
export interface KeyMeta {
  description?: string;
  default?: unknown;
  defaultText?: string;
  file?: string | false;
  unit?: 'duration' | 'grace' | 'size';
  secret?: 'value' | 'url';
}

/** One key of the configuration: a leaf of the schema (anything but a plain object of keys). */
export interface ConfigKey {
  /** Dotted path in the config object, e.g. `tokens.userTtlSeconds`. */
  path: string;
  /** Dotted path in the config file, e.g. `tokens.userTtl`; null when the file may not set it. */
  filePath: string | null;
  schema: TSchema & KeyMeta;
}

/** A schema of named keys (`Type.Object`), as opposed to a leaf (a record and an array are leaves). */
export function isKeyObject(schema: TSchema): schema is TSchema & { properties: Record<string, TSchema> } {
  const s = schema as { type?: unknown; properties?: unknown };
  return s.type === 'object' && typeof s.properties === 'object' && s.properties !== null;
}

function collectKeys(schema: TSchema, path: string[], filePath: string[] | null, out: ConfigKey[]): void {
  for (const [name, child] of Object.entries((schema as { properties: Record<string, TSchema & KeyMeta> }).properties)) {
    const fileName = child.file === false ? null : (child.file ?? name);
    const childFile = filePath === null || fileName === null ? null : [...filePath, fileName];
    if (isKeyObject(child)) collectKeys(child, [...path, name], childFile, out);
    else out.push({ path: [...path, name].join('.'), filePath: childFile?.join('.') ?? null, schema: child });
  }
}

/** Every key of the configuration in schema order. */
export const CONFIG_KEYS: readonly ConfigKey[] = (() => {
  const out: ConfigKey[] = [];
  collectKeys(ServiceConfigSchema, [], [], out);
  return Object.freeze(out);
})();

const KEYS_BY_PATH = new Map(CONFIG_KEYS.map((k) => [k.path, k]));

/** The key at `path`; throws on a path the schema does not have (a mistake in a table above). */
export function configKey(path: string): ConfigKey {
  const key = KEYS_BY_PATH.get(path);
  if (!key) throw new Error(`no config key ${path}`);
  return key;
}

/** The variable that sets `path`, if any. */
export function envVarOf(path: string): string | undefined {
  return Object.entries(CONFIG_ENV_TABLE).find(([, p]) => p === path)?.[0];
}

/** The flag that sets `path`, if any. */
export function flagOf(path: string): string | undefined {
  return (CONFIG_FLAG_TABLE as Record<string, string>)[path];
}

/** The values an enum key accepts, or undefined for other keys. */
export function enumValues(schema: TSchema): readonly string[] | undefined {
  const e = (schema as { enum?: unknown }).enum;
  return Array.isArray(e) ? (e as string[]) : undefined;
}
