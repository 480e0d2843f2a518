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

export const CE_TYPES = ['local', 'slurm', 'htcondor', 'opennebula'] as const;
export type CeType = (typeof CE_TYPES)[number];

const Name = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$' });
const Strict = { additionalProperties: false } as const;

export const QueueConfigSchema = Type.Object(
  {
    name: Name,
    /** CPU time a pilot there offers, in normalized (DB12) seconds. */
    cpuTime: Type.Optional(Type.Integer({ minimum: 1 })),
    /** Wall-clock seconds the batch system gives a pilot (sbatch --time, VM lifetime). */
    timeLimitSeconds: Type.Optional(Type.Integer({ minimum: 60 })),
    processors: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024 })),
    ramMb: Type.Optional(Type.Integer({ minimum: 1 })),
    gpus: Type.Optional(Type.Integer({ minimum: 0 })),
    platform: Type.Optional(Type.String({ minLength: 1 })),
    tags: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    requiredTags: Type.Optional(Type.Array(Type.String({ minLength: 1 }))),
    allowedVos: Type.Optional(Type.Array(Name)),
    maxWaitingPilots: Type.Optional(Type.Integer({ minimum: 0 })),
    maxTotalPilots: Type.Optional(Type.Integer({ minimum: 0 })),
    maxPilotsPerCycle: Type.Optional(Type.Integer({ minimum: 0 })),
    /** A node >= 20 for the wrapper to use first (a binary or a directory, e.g. on CVMFS). */
    nodePath: Type.Optional(Type.String({ minLength: 1 })),
    /** Local-disk work directories to try first. */
    workDirs: Type.Optional(Type.Array(Type.String({ pattern: '^/[^:]*$' }))),
    /** Exported by the wrapper. */
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
  return keys.length === 1 && ((keys[0] === 'env' && typeof r['env'] === 'string') || (keys[0] === 'file' && typeof r['file'] === 'string'));
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
    if (SECRET_KEY.test(k) && !isSecretRef(v)) out.push(`${at}.${k}: a secret must be { env: NAME } or { file: PATH }, never the value itself`);
    else if (v && typeof v === 'object' && !Array.isArray(v) && !isSecretRef(v)) out.push(...secretProblems(v as Record<string, unknown>, `${at}.${k}`));
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
 * Every problem of a parsed registry document, one line each with its path; empty when it is
 * valid. Checks the schema, names unique across the document, required settings per CE type,
 * secrets given as references, and limits that contradict each other.
 */
export function siteRegistryProblems(doc: unknown): string[] {
  if (!Value.Check(SiteRegistrySchema, doc)) {
    return [
      ...secretProblemsOf(doc),
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
  const problems: string[] = secretProblemsOf(doc);
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
      });
    });
  });
  return problems;
}
