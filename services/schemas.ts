/**
 * TypeBox schemas shared by the routes: errors, jobs, bulk answers, resources, tokens. Every
 * route declares its request and response schemas from these, so validation, fast
 * serialisation and the OpenAPI document (`/docs/json`) all come from one place.
 */
import { Type, type Static, type TSchema } from 'typebox';
import { ERROR_CODES } from '../core/errors.js';
import { JOB_STATES } from '../core/job-states.js';
import { INT4_MAX, MAX_NAME_LENGTH, MAX_TAGS } from '../core/job-model.js';
import { PERSON_ROLES, ROLES } from '../core/identity.js';
import { ClaimIdSchema } from '../core/pilot-protocol.js';

export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const DateTime = Type.String({ format: 'date-time' });

export const ErrorCodeSchema = Type.Enum(ERROR_CODES);
export const JobStateSchema = Type.Enum(JOB_STATES);
export const RoleSchema = Type.Enum(ROLES);
export const PersonRoleSchema = Type.Enum(PERSON_ROLES);

/**
 * One problem of a failed request: JDL problems carry `line`, `column` and maybe `attribute`
 * (and `jdl`, the index of the JDL in a list); validation problems carry `path`.
 */
export const ProblemSchema = Type.Object({
  message: Type.String(),
  line: Type.Optional(Type.Integer()),
  column: Type.Optional(Type.Integer()),
  attribute: Type.Optional(Type.String()),
  jdl: Type.Optional(Type.Integer()),
  path: Type.Optional(Type.String()),
});
export type Problem = Static<typeof ProblemSchema>;

export const ErrorSchema = Type.Object(
  {
    code: ErrorCodeSchema,
    message: Type.String(),
    problems: Type.Optional(Type.Array(ProblemSchema)),
  },
  { description: 'Every error answer: a code from the catalogue, a message, maybe problems.' },
);
export type ErrorBody = Static<typeof ErrorSchema>;

/** The error answers a route may give, for its `response` schema. */
export function errorResponses(...statuses: number[]): Record<number, typeof ErrorSchema> {
  const out: Record<number, typeof ErrorSchema> = {};
  for (const s of [...statuses, 500, 503]) out[s] = ErrorSchema;
  return out;
}

/** The error answers of an authenticated route. */
export const AUTH_ERRORS = [401, 403] as const;

/**
 * A database id (bigserial): at most 2^53 - 1, the largest integer JSON and JavaScript carry
 * exactly (below PostgreSQL's bigint bound). Integer fields without a bound of their own get
 * PostgreSQL's int4 bound (`withBounds` in plugins/input-guards.ts).
 */
export const ID_MAX = Number.MAX_SAFE_INTEGER;

/** A bigserial id in a request. */
export const IdSchema = (description: string) => Type.Integer({ minimum: 1, maximum: ID_MAX, description });

export const JobIdSchema = IdSchema('job id');
export const JobIdParams = Type.Object({ id: JobIdSchema });

export const JobSummarySchema = Type.Object({
  id: Type.Integer(),
  owner: Type.String(),
  ownerGroup: Type.String(),
  vo: Type.String(),
  jobName: Type.String(),
  jobGroup: Type.String(),
  jobType: Type.String(),
  site: Type.String(),
  status: JobStateSchema,
  minorStatus: Type.String(),
  applicationStatus: Type.String(),
  priority: Type.Integer(),
  cpuTime: Type.Integer({ description: 'requested CPU time, normalized (DB12) seconds' }),
  rescheduleCounter: Type.Integer(),
  submittedAt: DateTime,
  lastUpdateAt: DateTime,
  startExecAt: Nullable(DateTime),
  endExecAt: Nullable(DateTime),
  heartbeatAt: Nullable(DateTime),
});
export type JobSummary = Static<typeof JobSummarySchema>;

export const JobDetailSchema = Type.Object({
  ...JobSummarySchema.properties,
  jdl: Type.String(),
  pilotId: Nullable(Type.Integer()),
  bulkId: Nullable(Type.Integer()),
  parameterNumber: Nullable(Type.Integer()),
  rescheduledAt: Nullable(DateTime),
});
export type JobDetail = Static<typeof JobDetailSchema>;

export const HistoryEntrySchema = Type.Object({
  status: JobStateSchema,
  minorStatus: Type.String(),
  applicationStatus: Type.String(),
  source: Type.String(),
  at: DateTime,
});

export const BulkIdsBody = Type.Object(
  { ids: Type.Array(JobIdSchema, { minItems: 1, maxItems: 10_000 }) },
  { additionalProperties: false },
);

export const BulkResultSchema = Type.Object(
  {
    succeeded: Type.Array(Type.Integer()),
    failed: Type.Array(
      Type.Object({ id: Type.Integer(), code: ErrorCodeSchema, message: Type.String() }),
    ),
  },
  { description: 'Per-job answer of a bulk action: the request succeeds even when jobs fail.' },
);

const Name = Type.String({ minLength: 1, maxLength: MAX_NAME_LENGTH });

/** What a pilot offers; mirrors `ResourceDescription` in core/matching.ts. */
export const ResourceSchema = Type.Object(
  {
    site: Name,
    ce: Type.Optional(Name),
    queue: Type.Optional(Name),
    platform: Type.Optional(Name),
    tags: Type.Optional(Type.Array(Name, { maxItems: MAX_TAGS })),
    requiredTags: Type.Optional(Type.Array(Name, { maxItems: MAX_TAGS })),
    processors: Type.Optional(Type.Integer({ minimum: 1, maximum: 100_000 })),
    ramMb: Type.Optional(Type.Integer({ minimum: 0, maximum: INT4_MAX })),
    gpus: Type.Optional(Type.Integer({ minimum: 0, maximum: 100_000 })),
    cpuWork: Type.Number({
      minimum: 0,
      maximum: 1e15,
      description: 'CPU work the pilot can still deliver: time left x DB12 (normalized seconds)',
    }),
    vo: Type.Optional(Name),
    ownerGroups: Type.Optional(Type.Array(Name, { maxItems: 256 })),
    jobTypes: Type.Optional(Type.Array(Name, { maxItems: 64 })),
    /** A pilot's id of this match attempt (optional: admins, older pilots). */
    claimId: Type.Optional(ClaimIdSchema),
  },
  { additionalProperties: false },
);
export type ResourceBody = Static<typeof ResourceSchema>;
