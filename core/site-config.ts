/**
 * The site registry as site admins write it (`site-configs/*.yaml`, `wms site apply FILE`):
 * sites, their computing elements and the queues of each, with limits, what a pilot there
 * offers, and backend settings. Pure: the CLI parses the YAML, the services validate again and
 * apply. Every problem names its path (`sites[0].computingElements[1].queues[0].ramMb`).
 *
 * Secrets (passwords, keys, tokens) are references, `{ env: NAME }` or `{ file: PATH }`, never
 * values: a setting whose name says it is a secret and holds a plain string is refused, so that
 * nothing secret is stored in the database.
 */
import { Type, type Static, type TObject, type TSchema } from 'typebox';
import { Value } from 'typebox/value';
import { LOCAL_ISOLATIONS } from './config.js';
import { INT4_MAX, MAX_NAME_LENGTH, MAX_TAGS } from './job-model.js';

export const CE_TYPES = ['local', 'slurm', 'htcondor', 'opennebula'] as const;

/**
 * Environment variables a queue may not set: each makes a program run code or change how it
 * loads, whatever that program is: the pilot wrapper (bash), the pilot (node), the dynamic
 * linker under every binary, interpreters a payload starts. Written once, here; the services
 * refuse them when a registry document arrives (`wms site apply`, `PUT /api/sites`).
 * An entry ending in `*` is a prefix.
 *
 * Decided: `PYTHONPATH` is refused like `PERL5LIB` (a module named like a standard one in that
 * directory runs inside every Python process; a software stack is set up by the node or by the
 * job itself, not by a queue). `MALLOC_*` and `GLIBC_TUNABLES` are refused (read by glibc in
 * every process; GLIBC_TUNABLES was CVE-2023-4911). `NODE_TLS_REJECT_UNAUTHORIZED` and
 * `NODE_EXTRA_CA_CERTS` are refused: whom the pilot trusts when it calls home is the operator's
 * choice. `WMS_*` is reserved for the wrapper's own parameters. `PATH` stays allowed.
 */
export const LOADER_ENV_NAMES: readonly string[] = [
  // the dynamic linker (glibc ld.so, and macOS dyld) and glibc
  'LD_*', // LD_PRELOAD, LD_LIBRARY_PATH, LD_AUDIT, LD_DEBUG_OUTPUT, ...
  'DYLD_*',
  'GCONV_PATH',
  'GLIBC_TUNABLES',
  'MALLOC_*',
  // node (the pilot itself)
  'NODE_OPTIONS',
  'NODE_PATH',
  'NODE_REPL_EXTERNAL_MODULE',
  'NODE_EXTRA_CA_CERTS',
  'NODE_TLS_REJECT_UNAUTHORIZED',
  // shells (the wrapper is bash)
  'BASH_ENV',
  'ENV',
  'BASH_FUNC_*',
  'SHELLOPTS',
  'BASHOPTS',
  'PS4',
  'PROMPT_COMMAND',
  'IFS',
  'CDPATH',
  'GLOBIGNORE',
  'BASH_XTRACEFD',
  'BASH_LOADABLES_PATH',
  // interpreters
  'PYTHONSTARTUP',
  'PYTHONPATH',
  'PYTHONHOME',
  'PYTHONUSERBASE',
  'PERL5OPT',
  'PERL5LIB',
  'PERLLIB',
  'PERL5DB',
  'RUBYOPT',
  'RUBYLIB',
  'JAVA_TOOL_OPTIONS',
  '_JAVA_OPTIONS',
  'JDK_JAVA_OPTIONS',
  // the wrapper's own parameters
  'WMS_*',
];

/** True when a queue may not set the environment variable `name` (see LOADER_ENV_NAMES). */
export function isLoaderEnvName(name: string): boolean {
  const upper = name.toUpperCase();
  return LOADER_ENV_NAMES.some((n) => (n.endsWith('*') ? upper.startsWith(n.slice(0, -1)) : upper === n));
}
export type CeType = (typeof CE_TYPES)[number];

const Name = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$' });
const Strict = { additionalProperties: false } as const;

export const QueueConfigSchema = Type.Object(
  {
    name: Name,
    /** CPU time a pilot there offers, in normalized (DB12) seconds. */
    cpuTime: Type.Optional(Type.Integer({ minimum: 1, maximum: INT4_MAX })),
    /** Wall-clock seconds the batch system gives a pilot (sbatch --time, VM lifetime). */
    timeLimitSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 366 * 86_400 })),
    processors: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024 })),
    ramMb: Type.Optional(Type.Integer({ minimum: 1, maximum: INT4_MAX })),
    gpus: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000 })),
    platform: Type.Optional(Type.String({ minLength: 1, maxLength: MAX_NAME_LENGTH })),
    // A queue's tags are what its pilots offer the matcher, which takes at most MAX_TAGS.
    tags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: MAX_NAME_LENGTH }), { maxItems: MAX_TAGS })),
    requiredTags: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: MAX_NAME_LENGTH }), { maxItems: MAX_TAGS })),
    allowedVos: Type.Optional(Type.Array(Name, { maxItems: 1000 })),
    maxWaitingPilots: Type.Optional(Type.Integer({ minimum: 0, maximum: INT4_MAX })),
    maxTotalPilots: Type.Optional(Type.Integer({ minimum: 0, maximum: INT4_MAX })),
    maxPilotsPerCycle: Type.Optional(Type.Integer({ minimum: 0, maximum: INT4_MAX })),
    /** A node >= 20 for the wrapper to use first (a binary or a directory, e.g. on CVMFS). */
    nodePath: Type.Optional(Type.String({ minLength: 1 })),
    /** Local-disk work directories to try first. */
    workDirs: Type.Optional(Type.Array(Type.String({ pattern: '^/[^:]*$' }))),
    /**
     * How payloads are isolated from their pilot (pilot/isolation.ts): auto (bubblewrap, else a
     * separate user when the pilot is root, else the job is refused), bwrap, user, or none (a
     * single-user machine only: payloads then run as the pilot and can read its token).
     */
    isolation: Type.Optional(
      Type.Union(
        LOCAL_ISOLATIONS.map((i) => Type.Literal(i)),
        {
          description: 'auto | bwrap | user | none: how payloads are isolated from their pilot (default auto)',
        },
      ),
    ),
    /** The Unix user payloads run as when the pilot is root (isolation bwrap, user or auto); never root. */
    payloadUser: Type.Optional(
      Type.String({
        pattern: '^[a-z_][a-z0-9_-]{0,31}$|^[1-9][0-9]{0,9}(:[1-9][0-9]{0,9})?$',
        description: 'Unix user of payloads under a root pilot (default nobody)',
      }),
    ),
    /** A bubblewrap binary to use instead of bwrap on the pilot's PATH (e.g. on CVMFS). */
    bwrapPath: Type.Optional(
      Type.String({ pattern: '^/[^\\u0000]*$', description: 'absolute path of the bubblewrap binary (default: bwrap on PATH)' }),
    ),
    /** Given to payloads only (the pilot passes it on): never exported to the pilot itself. */
    environment: Type.Optional(Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.String())),
    /** Backend settings of this queue (e.g. an OpenNebula template id). */
    settings: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
  },
  Strict,
);
export type QueueConfig = Static<typeof QueueConfigSchema>;

export const CeConfigSchema = Type.Object(
  {
    name: Name,
    type: Type.Enum(CE_TYPES),
    settings: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    queues: Type.Array(QueueConfigSchema, { minItems: 1 }),
  },
  Strict,
);
export type CeConfig = Static<typeof CeConfigSchema>;

export const SiteConfigSchema = Type.Object(
  {
    name: Name,
    description: Type.Optional(Type.String()),
    computingElements: Type.Array(CeConfigSchema, { minItems: 1 }),
  },
  Strict,
);

export const SiteRegistrySchema = Type.Object({ sites: Type.Array(SiteConfigSchema, { minItems: 1 }) }, Strict);
export type SiteRegistry = Static<typeof SiteRegistrySchema>;

const SECRET_KEY = /(password|passwd|secret|token|private_?key|privatekey|credential)/i;

function isSecretRef(v: unknown): boolean {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return false;
  const keys = Object.keys(v);
  const r = v as Record<string, unknown>;
  return (
    keys.length === 1 && ((keys[0] === 'env' && typeof r['env'] === 'string') || (keys[0] === 'file' && typeof r['file'] === 'string'))
  );
}

/** `/sites/0/computingElements/1` -> `sites[0].computingElements[1]`. */
function pathOf(pointer: string): string {
  return pointer
    .split('/')
    .filter(Boolean)
    .map((p, i) => (/^\d+$/.test(p) ? `[${p}]` : i === 0 ? p : `.${p}`))
    .join('');
}

/**
 * Secrets given as values in `settings` (whose own path is `at`), searched in nested objects;
 * `plain` are top-level keys known not to be secrets (a CE type's `tokenKind`).
 */
function secretProblems(settings: Record<string, unknown> | undefined, at: string, plain: ReadonlySet<string> = new Set()): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(settings ?? {})) {
    if (plain.has(k)) continue;
    if (SECRET_KEY.test(k) && !isSecretRef(v))
      out.push(`${at}.${k}: a secret must be { env: NAME } or { file: PATH }, never the value itself`);
    else if (v && typeof v === 'object' && !Array.isArray(v) && !isSecretRef(v))
      out.push(...secretProblems(v as Record<string, unknown>, `${at}.${k}`));
  }
  return out;
}

const objectAt = (v: unknown): Record<string, unknown> | undefined =>
  v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
const listAt = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** The settings a CE type declares and that are not secrets (none for an unknown type). */
function plainSettingKeys(ceType: unknown): ReadonlySet<string> {
  if (!(CE_TYPES as readonly unknown[]).includes(ceType)) return new Set();
  return new Set(
    ceSettingDocs(ceType as CeType)
      .filter((d) => !d.secret)
      .map((d) => d.key),
  );
}

/** Secrets given as values anywhere a document has settings, even a document of the wrong shape. */
function secretProblemsOf(doc: unknown): string[] {
  const out: string[] = [];
  listAt(objectAt(doc)?.['sites']).forEach((site, si) => {
    listAt(objectAt(site)?.['computingElements']).forEach((ce, ci) => {
      const cAt = `sites[${si}].computingElements[${ci}]`;
      const plain = plainSettingKeys(objectAt(ce)?.['type']);
      const settings = objectAt(objectAt(ce)?.['settings']);
      if (settings) out.push(...secretProblems(settings, `${cAt}.settings`, plain));
      listAt(objectAt(ce)?.['queues']).forEach((q, qi) => {
        const qs = objectAt(objectAt(q)?.['settings']);
        if (qs) out.push(...secretProblems(qs, `${cAt}.queues[${qi}].settings`, plain));
      });
    });
  });
  return out;
}

/**
 * Environment variables a queue may not set (LOADER_ENV_NAMES), even in a document of the
 * wrong shape: in a queue's `environment`, and in `settings.environment` of a queue or CE (the
 * queue's settings are stored beside its environment, so that key would bypass the check).
 */
function loaderEnvProblemsOf(doc: unknown): string[] {
  const out: string[] = [];
  const check = (env: unknown, at: string) => {
    for (const name of Object.keys(objectAt(env) ?? {})) {
      if (isLoaderEnvName(name)) {
        out.push(
          `${at}.${name}: ${name} changes how programs load or start (the pilot, the dynamic linker, shells, interpreters); a queue may not set it`,
        );
      }
    }
  };
  listAt(objectAt(doc)?.['sites']).forEach((site, si) => {
    listAt(objectAt(site)?.['computingElements']).forEach((ce, ci) => {
      const cAt = `sites[${si}].computingElements[${ci}]`;
      check(objectAt(objectAt(ce)?.['settings'])?.['environment'], `${cAt}.settings.environment`);
      listAt(objectAt(ce)?.['queues']).forEach((q, qi) => {
        const qAt = `${cAt}.queues[${qi}]`;
        check(objectAt(q)?.['environment'], `${qAt}.environment`);
        check(objectAt(objectAt(q)?.['settings'])?.['environment'], `${qAt}.settings.environment`);
      });
    });
  });
  return out;
}

/** A secret: the name of an environment variable of the agents, or a file they can read. */
const SecretRefSchema = Type.Union([
  Type.Object({ env: Type.String({ minLength: 1 }) }, Strict),
  Type.Object({ file: Type.String({ minLength: 1 }) }, Strict),
]);
const Secret = (description: string) => Type.Optional(Type.Unsafe<unknown>({ ...SecretRefSchema, description, secret: true }));
const Text = (description: string, extra: Record<string, unknown> = {}) =>
  Type.Optional(Type.String({ minLength: 1, description, ...extra }));
const HOST_OR_NAME = '^[^\\s]+$';

/**
 * The backend settings of each CE type, as its driver reads them (agents/computing-elements/):
 * each key with its meaning, its default (`default`), whether a CE cannot work without it
 * (`requiredSetting`), and whether a queue may give its own value (`perQueue`: a queue's settings
 * inherit the CE's and override them, as DIRAC's queue parameters do; the other keys describe
 * the connection the CE's queues share). site-configs/README.md documents the same tables.
 */
export const CE_SETTINGS_SCHEMAS = {
  local: Type.Object({}, Strict),
  slurm: Type.Object(
    {
      host: Text("login node reached over SSH; absent: sbatch runs on the agents' machine", { pattern: HOST_OR_NAME }),
      user: Text('SSH user (required with host)'),
      port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, default: 22, description: 'SSH port' })),
      privateKey: Secret('the SSH private key'),
      password: Secret('the SSH password'),
      knownHostKey: Text('the login node\'s host key ("ssh-ed25519 AAAA..." or "SHA256:..."); without it the first key seen is trusted'),
      account: Text('sbatch --account of every pilot', { perQueue: true }),
      sbatchArgs: Type.Optional(
        Type.Array(Type.String(), { perQueue: true, description: "more sbatch arguments, after the driver's (so they win)" }),
      ),
      workDir: Text("where pilot stdout/stderr go on the cluster (default: ~/pilot-wms over SSH, the driver's directory locally)"),
      maxJobs: Type.Optional(
        Type.Integer({ minimum: 0, description: "the most jobs this CE's user may have queued or running (counted with squeue)" }),
      ),
    },
    Strict,
  ),
  htcondor: Type.Object(
    {
      schedd: Text("the schedd's name, -name on every command (default: the local schedd; remote: the CE's name)", {
        pattern: HOST_OR_NAME,
      }),
      pool: Text('the collector, -pool host[:port] (remote: default <schedd>:9619)', { pattern: HOST_OR_NAME }),
      remote: Type.Optional(
        Type.Boolean({ default: false, description: "submit straight to an HTCondor-CE's schedd (condor_submit -remote, spooling)" }),
      ),
      token: Secret('an IDTOKEN or SciToken for the schedd, re-read before every operation'),
      tokenKind: Type.Optional(
        Type.Union([Type.Literal('scitoken'), Type.Literal('idtoken')], {
          description: 'scitoken | idtoken (default scitoken with remote, else idtoken)',
        }),
      ),
      submitArgs: Type.Optional(
        Type.Array(Type.String(), { perQueue: true, description: 'more condor_submit arguments, before the submit file' }),
      ),
      extraSubmitLines: Type.Optional(
        Type.Array(Type.String(), {
          perQueue: true,
          description: "more submit-description lines, after the driver's (one line each, no queue statement)",
        }),
      ),
      timeoutSeconds: Type.Optional(
        Type.Number({ exclusiveMinimum: 0, default: 120, description: 'the deadline of each HTCondor command, in seconds' }),
      ),
    },
    Strict,
  ),
  opennebula: Type.Object(
    {
      endpoint: Text("oned's XML-RPC URL, e.g. https://one.example.org:2633/RPC2", { requiredSetting: true, pattern: '^https?://[^/]+' }),
      user: Text('the OpenNebula user', { requiredSetting: true, pattern: '^[^:]+$' }),
      password: Type.Unsafe<unknown>({
        ...SecretRefSchema,
        requiredSetting: true,
        secret: true,
        description: "the user's password or login token",
      }),
      templateId: Type.Optional(
        Type.Integer({ minimum: 0, perQueue: true, description: 'a VM template to instantiate (exactly one of templateId and template)' }),
      ),
      template: Text('a full VM template (ATTR = value lines, without NAME and CONTEXT) for one.vm.allocate', { perQueue: true }),
      vmNamePrefix: Type.Optional(
        Type.String({ pattern: '^[A-Za-z0-9_.-]{1,64}$', default: 'wms-pilot-', description: 'VMs are named <prefix><stamp>' }),
      ),
      maxLifetimeSeconds: Type.Optional(Type.Number({ minimum: 1, default: 172_800, description: 'older VMs are terminated' })),
      contextExtra: Type.Optional(
        Type.Record(Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }), Type.Union([Type.String(), Type.Number(), Type.Boolean()]), {
          perQueue: true,
          description: 'more CONTEXT entries, e.g. { NETWORK: "YES" }',
        }),
      ),
      maxVms: Type.Optional(Type.Number({ minimum: 0, description: 'the most VMs of this prefix at once (free slots = maxVms - VMs)' })),
      powerOffAtEnd: Type.Optional(
        Type.Boolean({ default: true, perQueue: true, description: 'the VM powers itself off when its pilot ends' }),
      ),
      timeoutSeconds: Type.Optional(
        Type.Number({ minimum: 0.001, default: 30, description: 'the deadline of each XML-RPC call, in seconds' }),
      ),
    },
    Strict,
  ),
} as const satisfies Record<CeType, TObject>;

/** Keys of a CE type of which a queue may give only one: a queue giving one replaces the CE's whole group. */
const ALTERNATIVES: Partial<Record<CeType, readonly (readonly string[])[]>> = {
  opennebula: [['templateId', 'template']],
};

/** What the settings table of a CE type says of one key. */
export interface CeSettingDoc {
  key: string;
  required: boolean;
  perQueue: boolean;
  secret: boolean;
  default?: unknown;
  description: string;
}

/** The settings of a CE type, in schema order: for site-configs/README.md and its test. */
export function ceSettingDocs(ceType: CeType): CeSettingDoc[] {
  return Object.entries(CE_SETTINGS_SCHEMAS[ceType].properties as Record<string, Record<string, unknown>>).map(([key, s]) => ({
    key,
    required: s['requiredSetting'] === true,
    perQueue: s['perQueue'] === true,
    secret: s['secret'] === true,
    ...(s['default'] !== undefined ? { default: s['default'] } : {}),
    description: String(s['description'] ?? ''),
  }));
}

/** The settings table of a CE type as site-configs/README.md shows it (a unit test keeps them equal). */
export function ceSettingsTableMarkdown(ceType: CeType): string {
  const cell = (t: string) => t.replace(/\|/g, '\\|').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  const rows = ceSettingDocs(ceType).map((d) =>
    [
      `\`${d.key}\``,
      d.required ? 'yes' : 'no',
      d.perQueue ? 'yes' : 'no',
      d.default === undefined ? '' : `\`${JSON.stringify(d.default)}\``,
      cell(`${d.secret ? 'a secret, { env: NAME } or { file: PATH }: ' : ''}${d.description}`),
    ].join(' | '),
  );
  if (rows.length === 0) return '(no settings)';
  return ['| key | required | per queue | default | meaning |', '| --- | --- | --- | --- | --- |', ...rows.map((r) => `| ${r} |`)].join(
    '\n',
  );
}

/**
 * A queue's backend settings without the queue's own keys (`timeLimitSeconds`, `environment`,
 * `workDirs`, ...: the registry stores them beside the backend settings).
 */
function backendOnly(queueSettings: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(queueSettings).filter(([k]) => !(k in QueueConfigSchema.properties)));
}

/**
 * The settings one queue's pilots are submitted with: the CE's, overridden by the queue's own
 * (a queue that names one key of a group of alternatives, such as OpenNebula's templateId and
 * template, replaces the CE's whole group). The queue's own keys stay in the answer.
 */
export function mergeCeSettings(
  ceType: string,
  ceSettings: Readonly<Record<string, unknown>>,
  queueSettings: Readonly<Record<string, unknown>> = {},
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...ceSettings };
  for (const group of ALTERNATIVES[ceType as CeType] ?? []) {
    if (group.some((k) => queueSettings[k] !== undefined)) for (const k of group) delete out[k];
  }
  return { ...out, ...queueSettings };
}

/** One problem of a CE's settings: the key, whether the queue's settings hold the faulty value, and what is wrong. */
interface SettingsProblem {
  key: string;
  inQueue: boolean;
  message: string;
}

const SECRET_MESSAGE = 'a secret must be { env: NAME } or { file: PATH }, never the value itself';

/** The problems of the queue-over-CE settings of one queue (or of the CE alone). */
function settingsProblemsOf(ceType: CeType, ce: Record<string, unknown>, queue: Record<string, unknown>): SettingsProblem[] {
  const schema = CE_SETTINGS_SCHEMAS[ceType];
  const props = schema.properties as Record<string, TSchema & Record<string, unknown>>;
  const merged = mergeCeSettings(ceType, ce, queue);
  const out: SettingsProblem[] = [];
  const known = Object.keys(props);
  for (const [key, value] of Object.entries(merged)) {
    const inQueue = key in queue;
    const prop = props[key];
    if (!prop) {
      const list = known.length > 0 ? ` (known: ${known.join(', ')})` : ' (it has none)';
      out.push({ key, inQueue, message: `not a setting of ${aCe(ceType)}${list}` });
    } else if (inQueue && prop['perQueue'] !== true) {
      out.push({ key, inQueue, message: `a setting of the computing element (shared by its queues), not of a queue` });
    } else if (prop['secret'] === true && !isSecretRef(value)) {
      out.push({ key, inQueue, message: SECRET_MESSAGE });
    } else if (!Value.Check(prop, value)) {
      out.push({ ...valueProblem(prop, value, key), inQueue });
    }
  }
  for (const [key, prop] of Object.entries(props)) {
    if (prop['requiredSetting'] === true && merged[key] === undefined)
      out.push({ key, inQueue: false, message: `required for ${aCe(ceType)}` });
  }
  out.push(...ruleProblems(ceType, merged, queue));
  return out;
}

/** `a slurm`, `an opennebula`. */
const aCe = (ceType: string) => `${/^[aeiou]/.test(ceType) ? 'an' : 'a'} ${ceType} computing element`;

/**
 * Why `value` does not fit the schema of setting `key`: the key (with the path inside the value)
 * and one message; the alternatives of a union are named together ("must be string or number").
 */
function valueProblem(prop: TSchema, value: unknown, key: string): { key: string; message: string } {
  const literals = ((prop as { anyOf?: { const?: unknown }[] }).anyOf ?? []).map((x) => x.const);
  if (literals.length > 0 && literals.every((l) => l !== undefined)) return { key, message: `must be one of ${literals.join(', ')}` };
  const errors = Value.Errors(prop, value).filter((e) => e.keyword !== 'anyOf');
  const first = errors[0];
  if (!first) return { key, message: 'is not valid' };
  const here = errors.filter((e) => e.instancePath === first.instancePath);
  const types = here.map((e) => (e.params as { type?: unknown }).type).filter((t) => typeof t === 'string');
  const message = types.length > 1 && types.length === here.length ? `must be ${[...new Set(types)].join(' or ')}` : first.message;
  const sub = pathOf(first.instancePath);
  return { key: sub ? `${key}${sub.startsWith('[') ? '' : '.'}${sub}` : key, message };
}

/** What the schemas cannot say: keys that need each other, exclude each other, or values a driver refuses. */
function ruleProblems(ceType: CeType, s: Record<string, unknown>, queue: Record<string, unknown>): SettingsProblem[] {
  const out: SettingsProblem[] = [];
  const at = (key: string, message: string) => out.push({ key, inQueue: key in queue, message });
  if (ceType === 'slurm') {
    if (s['host'] !== undefined && s['user'] === undefined) at('user', 'required with host');
    if (s['host'] === undefined)
      for (const k of ['user', 'port', 'privateKey', 'password']) if (s[k] !== undefined) at(k, 'needs host (the SSH login node)');
  } else if (ceType === 'htcondor') {
    const bad = (Array.isArray(s['extraSubmitLines']) ? s['extraSubmitLines'] : []).find(
      (l) => typeof l === 'string' && (/^\s*queue\b/i.test(l) || l.includes('\n')),
    );
    if (bad !== undefined) at('extraSubmitLines', `one line each, and no queue statement (${JSON.stringify(bad)})`);
  } else if (ceType === 'opennebula') {
    if ((s['templateId'] === undefined) === (s['template'] === undefined)) {
      out.push({
        key: 'templateId',
        inQueue: 'templateId' in queue || 'template' in queue,
        message: "give exactly one of templateId and template (in the CE's settings or the queue's)",
      });
    }
    if (typeof s['template'] === 'string' && /^\s*(NAME|CONTEXT)\s*=/im.test(s['template']))
      at('template', 'must not set NAME or CONTEXT (the driver sets them; use contextExtra)');
    for (const k of Object.keys(objectAt(s['contextExtra']) ?? {})) {
      if (['START_SCRIPT', 'START_SCRIPT_BASE64', 'DIRAC_PILOT_STAMP'].includes(k.toUpperCase()))
        at('contextExtra', `${k} is set by the driver`);
    }
  }
  return out;
}

/**
 * Every problem of the backend settings of a CE of type `ceType`, as one queue's pilots would be
 * submitted with them (`queueSettings` over `ceSettings`; the queue's own keys, such as
 * `timeLimitSeconds`, are ignored), one line each: `settings.KEY: what is wrong` for the CE's
 * settings, `queue settings.KEY: ...` for a value the queue gives. Empty when the driver can
 * work with them. An unknown CE type is one problem.
 */
export function ceSettingsProblems(ceType: string, ceSettings: unknown, queueSettings?: unknown): string[] {
  if (!(CE_TYPES as readonly string[]).includes(ceType)) return [`type: ${ceType} is not a CE type (${CE_TYPES.join(', ')})`];
  const ce = objectAt(ceSettings) ?? {};
  const queue = backendOnly(objectAt(queueSettings) ?? {});
  return [
    ...new Set(settingsProblemsOf(ceType as CeType, ce, queue).map((p) => `${p.inQueue ? 'queue ' : ''}settings.${p.key}: ${p.message}`)),
  ];
}

/**
 * The settings problems of one CE of a document, each named by its path: the CE's settings, or
 * the settings of the queue that gives the faulty value. A key missing for some queues only is
 * named at each of those queues; missing for all, at the CE.
 */
function ceProblemsAt(ce: CeConfig, cAt: string): string[] {
  const perQueue = ce.queues.map((q) => settingsProblemsOf(ce.type, ce.settings ?? {}, backendOnly(q.settings ?? {})));
  const everywhere = (p: SettingsProblem) =>
    perQueue.every((ps) => ps.some((x) => !x.inQueue && x.key === p.key && x.message === p.message));
  const lines = perQueue.flatMap((ps, qi) =>
    ps.map((p) => {
      const at = p.inQueue || !everywhere(p) ? `${cAt}.queues[${qi}].settings` : `${cAt}.settings`;
      return `${at}.${p.key}: ${p.message}`;
    }),
  );
  return [...new Set(lines)];
}

/**
 * Every problem of a parsed registry document, one line each with its path; empty when it is
 * valid. Checks the schema, names unique across the document, the backend settings of each CE type (CE_SETTINGS_SCHEMAS),
 * secrets given as references, environment variables a queue may not set, and limits that
 * contradict each other.
 */
export function siteRegistryProblems(doc: unknown): string[] {
  if (!Value.Check(SiteRegistrySchema, doc)) {
    return [
      ...secretProblemsOf(doc),
      ...loaderEnvProblemsOf(doc),
      ...new Set(
        Value.Errors(SiteRegistrySchema, doc)
          .filter((e) => e.keyword !== 'boolean' && e.keyword !== 'anyOf')
          .map((e) => {
            const extra = (e.params as { additionalProperties?: string[] }).additionalProperties;
            const at = pathOf(e.instancePath) || '(top)';
            return extra ? `${at}: unknown key(s) ${extra.join(', ')}` : `${at}: ${e.message}`;
          }),
      ),
    ];
  }
  const reg = doc as SiteRegistry;
  const problems: string[] = [...secretProblemsOf(doc), ...loaderEnvProblemsOf(doc)];
  const seen = { site: new Map<string, string>(), ce: new Map<string, string>() };
  reg.sites.forEach((site, si) => {
    const sAt = `sites[${si}]`;
    if (seen.site.has(site.name)) problems.push(`${sAt}.name: site ${site.name} is already defined at ${seen.site.get(site.name)}`);
    seen.site.set(site.name, sAt);
    site.computingElements.forEach((ce, ci) => {
      const cAt = `${sAt}.computingElements[${ci}]`;
      if (seen.ce.has(ce.name)) problems.push(`${cAt}.name: computing element ${ce.name} is already defined at ${seen.ce.get(ce.name)}`);
      seen.ce.set(ce.name, cAt);
      problems.push(...ceProblemsAt(ce, cAt));
      const queues = new Set<string>();
      ce.queues.forEach((q, qi) => {
        const qAt = `${cAt}.queues[${qi}]`;
        if (queues.has(q.name)) problems.push(`${qAt}.name: queue ${q.name} appears twice in ${ce.name}`);
        queues.add(q.name);
        if (q.maxWaitingPilots !== undefined && q.maxTotalPilots !== undefined && q.maxWaitingPilots > q.maxTotalPilots) {
          problems.push(`${qAt}.maxWaitingPilots: ${q.maxWaitingPilots} is above maxTotalPilots ${q.maxTotalPilots}`);
        }
        const missing = (q.requiredTags ?? []).filter((t) => !(q.tags ?? []).includes(t));
        if (missing.length > 0) problems.push(`${qAt}.requiredTags: ${missing.join(', ')} must also be in tags`);
        // A queue's own keys are stored in its settings: given in `settings`, they would skip their checks.
        for (const key of Object.keys(q.settings ?? {})) {
          if (key !== 'settings' && key in QueueConfigSchema.properties) {
            problems.push(
              `${qAt}.settings.${key}: ${key} is a key of the queue itself (write it beside name, where it is checked), not a setting`,
            );
          }
        }
      });
    });
  });
  return [...new Set(problems)];
}
