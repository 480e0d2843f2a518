/** Probes: liveness and database reachability; the server clock. */
import { Type, type Static } from 'typebox';
import { DateTime } from './common.js';

export const HealthSchema = Type.Object(
  { status: Type.Literal('ok'), db: Type.Literal('ok'), driver: Type.String(), time: DateTime() },
  { $id: 'Health', description: 'The service and its database answer.' },
);
export type Health = Static<typeof HealthSchema>;
