/** Tokens: issuing, who the bearer is, revocations. */
import { Type, type Static } from 'typebox';
import { MAX_TOKEN_SITES } from '../core/identity.js';
import { DateTime, ID_MAX, Nullable, ref, RoleSchema } from './common.js';

/** User, group and VO names in tokens (as `isValidName` in core/identity.ts). */
export const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$';

export const IssueTokenRequestSchema = Type.Object(
  {
    user: Type.Optional(Type.String({ pattern: NAME_PATTERN, description: 'user name (people)' })),
    vo: Type.String({ pattern: NAME_PATTERN }),
    group: Type.Optional(Type.String({ pattern: NAME_PATTERN, description: 'group (people)' })),
    role: Type.Optional(
      Type.Union([Type.Literal('user'), Type.Literal('admin'), Type.Literal('site-admin'), Type.Literal('pilot')], {
        default: 'user',
      }),
    ),
    pilotId: Type.Optional(Type.Integer({ minimum: 1, maximum: ID_MAX, description: 'pilot tokens: the pilot bound to' })),
    sites: Type.Optional(
      Type.Array(Type.String({ pattern: NAME_PATTERN }), {
        maxItems: MAX_TOKEN_SITES,
        description: 'site-admin tokens (required): the sites administered; never the local site',
      }),
    ),
    ttlSeconds: Type.Optional(Type.Integer({ minimum: 60, maximum: 2 ** 31 - 1, description: 'lifetime; default by role' })),
  },
  {
    $id: 'IssueTokenRequest',
    additionalProperties: false,
    description: 'People: user, vo, group (and sites for site admins); pilots: vo, pilotId.',
  },
);
export type IssueTokenRequest = Static<typeof IssueTokenRequestSchema>;

export const IdentitySchema = Type.Object(
  {
    role: RoleSchema,
    user: Type.String(),
    vo: Type.String(),
    group: Type.Optional(Type.String()),
    jobId: Type.Optional(Type.Integer()),
    pilotId: Type.Optional(Nullable(Type.Integer())),
    sites: Type.Optional(Type.Array(Type.String(), { description: 'site admins: the sites administered' })),
  },
  { $id: 'Identity', description: 'Who a token stands for.' },
);
export type Identity = Static<typeof IdentitySchema>;

export const IssuedTokenSchema = Type.Object(
  { token: Type.String(), expiresAt: DateTime(), identity: ref(IdentitySchema) },
  { $id: 'IssuedToken', description: 'A new token and who it stands for.' },
);
export type IssuedToken = Static<typeof IssuedTokenSchema>;

export const RevokeTokenRequestSchema = Type.Object(
  {
    token: Type.Optional(Type.String({ minLength: 1, maxLength: 16_384, description: 'the token to revoke' })),
    jti: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: "a token's id (jti), with expiresAt" })),
    expiresAt: Type.Optional(DateTime('with jti: when that token expires')),
    vo: Type.Optional(Type.String({ pattern: NAME_PATTERN, description: 'with user: every token of that user of that VO' })),
    user: Type.Optional(Type.String({ pattern: NAME_PATTERN, description: 'with vo: the user (or subject) whose tokens to revoke' })),
    pilotId: Type.Optional(Type.Integer({ minimum: 1, maximum: ID_MAX, description: 'every token of this pilot' })),
    reason: Type.Optional(Type.String({ maxLength: 500, pattern: '^[^\\u0000]*$' })),
  },
  { $id: 'RevokeTokenRequest', additionalProperties: false, description: 'One of: token; jti with expiresAt; vo with user; pilotId.' },
);
export type RevokeTokenRequest = Static<typeof RevokeTokenRequestSchema>;

export const RevocationSchema = Type.Object(
  {
    id: Type.Integer(),
    jti: Nullable(Type.String()),
    vo: Nullable(Type.String()),
    subject: Nullable(Type.String()),
    revokedAt: DateTime(),
    expiresAt: DateTime(),
    reason: Type.String(),
    revokedBy: Type.String(),
  },
  { $id: 'Revocation', description: 'A revocation in force.' },
);
export type Revocation = Static<typeof RevocationSchema>;

export const RevocationAnswerSchema = Type.Object(
  { revocation: ref(RevocationSchema) },
  { $id: 'RevocationAnswer', description: 'The revocation stored.' },
);
export type RevocationAnswer = Static<typeof RevocationAnswerSchema>;

export const RevocationListSchema = Type.Object(
  { revocations: Type.Array(ref(RevocationSchema)) },
  { $id: 'RevocationList', description: 'Revocations in force, newest first.' },
);
export type RevocationList = Static<typeof RevocationListSchema>;
