/**
 * What every part of the contract uses: the `named` / `ref` pair that makes a shape a component
 * of the OpenAPI document and points at it, nullable and date-time fields, the enumerations of
 * core/, and the error body every route answers.
 */
import { Type, type Static, type TSchema, type TUnsafe } from 'typebox';
import { ERROR_CODES } from '../core/errors.js';
import { PERSON_ROLES, ROLES } from '../core/identity.js';
import { JOB_STATES } from '../core/job-states.js';
import { PILOT_STATES } from '../core/pilot-states.js';

/** A schema with its component name. */
export type Named<T extends TSchema = TSchema> = T & { $id: string };

/**
 * A copy of `schema` named `id` (its `$id`): how a shape declared elsewhere (core/'s pilot
 * protocol) becomes a component without changing the original. The copy keeps TypeBox's
 * non-enumerable properties, so `Static<>` and TypeBox's checks still work on it.
 */
export function named<T extends TSchema>(id: string, schema: T, description?: string): Named<T> {
  const copy = Object.defineProperties({}, Object.getOwnPropertyDescriptors(schema)) as Named<T> & { description?: string };
  copy.$id = id;
  if (description !== undefined) copy.description = description;
  return copy;
}

/**
 * A reference to a named shape (`{ $ref: "<id>#" }`), typed as the shape: fastify resolves it
 * against the schemas added with `addSchema`, and @fastify/swagger writes it as
 * `#/components/schemas/<id>`. A named shape is only ever nested by reference: its `$id` may
 * appear once in the set of shared schemas. `description` says what this use of it means (an
 * error answer's status).
 */
export function ref<T extends TSchema>(schema: T, options: { description?: string } = {}): TUnsafe<Static<T>> {
  const id = (schema as { $id?: unknown }).$id;
  if (typeof id !== 'string') throw new Error('ref(): the schema has no $id (only named shapes are referenced)');
  return Type.Unsafe<Static<T>>({ $ref: `${id}#`, ...options });
}

export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
export const DateTime = (description?: string) =>
  Type.String({ format: 'date-time', ...(description !== undefined ? { description } : {}) });

export const ErrorCodeSchema = Type.Enum(ERROR_CODES);
export const JobStateSchema = Type.Enum(JOB_STATES);
export const PilotStateSchema = Type.Enum(PILOT_STATES);
export const RoleSchema = Type.Enum(ROLES);
export const PersonRoleSchema = Type.Enum(PERSON_ROLES);

/**
 * A database id (bigserial): at most 2^53 - 1, the largest integer JSON and JavaScript carry
 * exactly (below PostgreSQL's bigint bound). Integer fields of requests without a bound of
 * their own get PostgreSQL's int4 bound (`withBounds` in services/plugins/input-guards.ts).
 */
export const ID_MAX = Number.MAX_SAFE_INTEGER;

/** A bigserial id in a request. */
export const IdSchema = (description: string) => Type.Integer({ minimum: 1, maximum: ID_MAX, description });

export const JobIdSchema = IdSchema('job id');

/**
 * One problem of a failed request: JDL problems carry `line`, `column` and maybe `attribute`
 * (and `jdl`, the index of the JDL in a list); validation problems carry `path`.
 */
export const ProblemSchema = Type.Object(
  {
    message: Type.String(),
    line: Type.Optional(Type.Integer()),
    column: Type.Optional(Type.Integer()),
    attribute: Type.Optional(Type.String()),
    jdl: Type.Optional(Type.Integer({ description: 'index (0-based) of the JDL of a list the problem is in' })),
    path: Type.Optional(Type.String({ description: 'where in the request: body/jdls/3, querystring/site' })),
  },
  { $id: 'Problem', description: 'One problem of a refused request.' },
);
export type Problem = Static<typeof ProblemSchema>;

export const ErrorSchema = Type.Object(
  {
    code: ErrorCodeSchema,
    message: Type.String(),
    problems: Type.Optional(Type.Array(ref(ProblemSchema))),
  },
  { $id: 'Error', description: 'Every error answer: a code from the catalogue, a message, maybe problems.' },
);
/** `{ code, message, problems? }` (not named `Error`: that is JavaScript's). */
export type ErrorBody = Static<typeof ErrorSchema>;
