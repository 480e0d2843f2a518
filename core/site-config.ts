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
import { Type, type Static } from 'typebox';
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

/** Settings every CE of a type must have. */
const REQUIRED_SETTINGS: Record<CeType, string[]> = {
  local: [],
  slurm: [],
  htcondor: [],
  opennebula: ['endpoint', 'user', 'password'],
};

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

/** Secrets given as values in `settings` (whose own path is `at`), searched in nested objects. */
function secretProblems(settings: Record<string, unknown> | undefined, at: string): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(settings ?? {})) {
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

/** Secrets given as values anywhere a document has settings, even a document of the wrong shape. */
function secretProblemsOf(doc: unknown): string[] {
  const out: string[] = [];
  listAt(objectAt(doc)?.['sites']).forEach((site, si) => {
    listAt(objectAt(site)?.['computingElements']).forEach((ce, ci) => {
      const cAt = `sites[${si}].computingElements[${ci}]`;
      const settings = objectAt(objectAt(ce)?.['settings']);
      if (settings) out.push(...secretProblems(settings, `${cAt}.settings`));
      listAt(objectAt(ce)?.['queues']).forEach((q, qi) => {
        const qs = objectAt(objectAt(q)?.['settings']);
        if (qs) out.push(...secretProblems(qs, `${cAt}.queues[${qi}].settings`));
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

/**
 * Every problem of a parsed registry document, one line each with its path; empty when it is
 * valid. Checks the schema, names unique across the document, required settings per CE type,
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
      for (const key of REQUIRED_SETTINGS[ce.type]) {
        if (ce.settings?.[key] === undefined) problems.push(`${cAt}.settings.${key}: required for a ${ce.type} computing element`);
      }
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
  return problems;
}
