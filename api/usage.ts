/** Accounting of finished jobs, quotas and usage, and the group shares behind them. */
import { Type, type Static } from 'typebox';
import { DateTime, ref } from './common.js';
import { NAME_PATTERN } from './tokens.js';

/** How accounting records are grouped (`by=`); db/ops/accounting.ts reports these. */
export const ACCOUNTING_GROUPINGS = ['site', 'group', 'user', 'vo'] as const;
export type AccountingGrouping = (typeof ACCOUNTING_GROUPINGS)[number];
export const AccountingGroupingSchema = Type.Enum(ACCOUNTING_GROUPINGS, { description: 'group records by site, group, user or vo' });

export const AccountingRowSchema = Type.Object(
  {
    key: Type.String(),
    jobs: Type.Integer(),
    done: Type.Integer(),
    failed: Type.Integer(),
    killed: Type.Integer(),
    cpuSeconds: Type.Number(),
    wallSeconds: Type.Number(),
    normalizedCpuSeconds: Type.Number({ description: "CPU seconds × the pilot's DB12 (DIRAC's CPUNormalizationFactor)" }),
  },
  { $id: 'AccountingRow', description: 'The accounting of one key (site, group, user or VO).' },
);
export type AccountingRow = Static<typeof AccountingRowSchema>;

export const AccountingReportSchema = Type.Object(
  { by: AccountingGroupingSchema, since: DateTime(), rows: Type.Array(ref(AccountingRowSchema)) },
  { $id: 'AccountingReport', description: 'Finished jobs per key, biggest normalized CPU first.' },
);
export type AccountingReport = Static<typeof AccountingReportSchema>;

export const UsageWindowSchema = Type.Object(
  {
    jobs: Type.Integer({ description: 'finished jobs (accounting records) ended in the window' }),
    cpuSeconds: Type.Number(),
    normalizedCpuSeconds: Type.Number({ description: "CPU seconds × the pilot's DB12" }),
  },
  { $id: 'UsageWindow', description: 'Finished jobs and CPU in a window (day, week).' },
);
export type UsageWindow = Static<typeof UsageWindowSchema>;

const live = {
  waiting: Type.Integer({ description: 'jobs not yet handed to a pilot (Received … Waiting, Rescheduled)' }),
  running: Type.Integer({ description: 'jobs held by a pilot (Matched, Running, Stalled, Completing)' }),
  day: ref(UsageWindowSchema),
  week: ref(UsageWindowSchema),
};

export const GroupUsageSchema = Type.Object(
  {
    vo: Type.String(),
    group: Type.String(),
    share: Type.Number({ description: 'the configured share, else the default (defaultShare)' }),
    shareConfigured: Type.Boolean(),
    shareFraction: Type.Number({ description: "share / the sum of the shares of the VO's active groups" }),
    usedFraction: Type.Number({ description: "the group's normalized CPU of the week / the VO's (0 when the VO used none)" }),
    ...live,
  },
  { $id: 'GroupUsage', description: 'A group: jobs now, CPU of the last day and week, share against use.' },
);
export type GroupUsage = Static<typeof GroupUsageSchema>;

export const UserUsageSchema = Type.Object(
  { vo: Type.String(), group: Type.String(), user: Type.String(), ...live },
  { $id: 'UserUsage', description: 'A user: jobs now, CPU of the last day and week.' },
);
export type UserUsage = Static<typeof UserUsageSchema>;

export const UsageSchema = Type.Object(
  {
    daySince: DateTime(),
    weekSince: DateTime(),
    defaultShare: Type.Number(),
    groups: Type.Array(ref(GroupUsageSchema), { description: 'active groups: jobs waiting or running, or finished in the week' }),
    users: Type.Array(ref(UserUsageSchema)),
  },
  { $id: 'Usage', description: 'Usage per group and per user.' },
);
export type Usage = Static<typeof UsageSchema>;

export const ShareSchema = Type.Object(
  {
    vo: Type.String(),
    group: Type.String(),
    share: Type.Number(),
    configured: Type.Boolean({ description: 'false: not set, the default applies' }),
  },
  { $id: 'Share', description: "A group's fair share." },
);
export type Share = Static<typeof ShareSchema>;

export const ShareListSchema = Type.Object(
  { defaultShare: Type.Number(), shares: Type.Array(ref(ShareSchema)) },
  { $id: 'ShareList', description: 'The group shares (default: defaultShare).' },
);
export type ShareList = Static<typeof ShareListSchema>;

export const SetShareRequestSchema = Type.Object(
  {
    share: Type.Number({
      exclusiveMinimum: 0,
      description: "the group's fair share (DIRAC's JobShare; default: defaultShare of GET /api/shares)",
    }),
  },
  { $id: 'SetShareRequest', additionalProperties: false },
);
export type SetShareRequest = Static<typeof SetShareRequestSchema>;

/** Path parameters naming a group share. */
export const ShareParamsSchema = Type.Object({
  vo: Type.String({ pattern: NAME_PATTERN }),
  group: Type.String({ pattern: NAME_PATTERN }),
});
