/** The site registry: queues with their CE and site, bans and pauses, a site's status. */
import { Type, type Static } from 'typebox';
import { DateTime, Nullable, PilotStateSchema, ref } from './common.js';

const queueProperties = {
  queue: Type.String(),
  ce: Type.String(),
  ceType: Type.String(),
  site: Type.String(),
  cpuTime: Type.Integer(),
  processors: Type.Integer(),
  ramMb: Type.Integer(),
  gpus: Type.Integer(),
  platform: Nullable(Type.String()),
  tags: Type.Array(Type.String()),
  allowedVos: Type.Array(Type.String()),
  maxWaitingPilots: Type.Integer(),
  maxTotalPilots: Type.Integer(),
  maxPilotsPerCycle: Type.Integer(),
  siteBanned: Type.Boolean(),
  siteBanReason: Nullable(Type.String()),
  ceBanned: Type.Boolean(),
  ceBanReason: Nullable(Type.String()),
  pausedUntil: Nullable(DateTime()),
  pauseReason: Nullable(Type.String()),
};

export const QueueSchema = Type.Object(queueProperties, {
  $id: 'Queue',
  description: 'A registered CE queue with its CE and site, bans and pause.',
});
export type Queue = Static<typeof QueueSchema>;

export const QueueListSchema = Type.Object(
  { queues: Type.Array(ref(QueueSchema)) },
  { $id: 'QueueList', description: 'Every registered queue.' },
);
export type QueueList = Static<typeof QueueListSchema>;

export const PilotFailureSchema = Type.Object(
  { pilotId: Type.Integer(), status: PilotStateSchema, reason: Type.String(), at: DateTime() },
  { $id: 'PilotFailure', description: 'A pilot that ended badly, and why.' },
);
export type PilotFailure = Static<typeof PilotFailureSchema>;

export const QueueStatusSchema = Type.Object(
  {
    ...queueProperties,
    pilots: Type.Record(Type.String(), Type.Integer(), { description: 'pilot state → pilots' }),
    lastFailures: Type.Array(ref(PilotFailureSchema)),
  },
  { $id: 'QueueStatus', description: 'A queue with its pilots by state and the last failures.' },
);
export type QueueStatus = Static<typeof QueueStatusSchema>;

export const SiteStatusSchema = Type.Object(
  { site: Type.String(), queues: Type.Array(ref(QueueStatusSchema)) },
  { $id: 'SiteStatus', description: "A site's queues with their pilots and last failures." },
);
export type SiteStatus = Static<typeof SiteStatusSchema>;

export const RegistryAppliedSchema = Type.Object(
  {
    sites: Type.Integer(),
    computingElements: Type.Integer(),
    queues: Type.Object({ created: Type.Integer(), updated: Type.Integer() }),
  },
  { $id: 'RegistryApplied', description: 'What applying a registry document did.' },
);
export type RegistryApplied = Static<typeof RegistryAppliedSchema>;

export const BanRequestSchema = Type.Object(
  { reason: Type.String({ minLength: 1, maxLength: 500 }) },
  { $id: 'BanRequest', additionalProperties: false },
);
export type BanRequest = Static<typeof BanRequestSchema>;

export const BanAnswerSchema = Type.Object(
  { name: Type.String(), banned: Type.Boolean() },
  { $id: 'BanAnswer', description: 'The ban state now.' },
);
export type BanAnswer = Static<typeof BanAnswerSchema>;
