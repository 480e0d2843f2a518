/**
 * Usage against shares (`GET /api/usage`): per group and per user of a VO, jobs waiting and
 * running now and what finished jobs used in the last day and week, with the group's share and
 * its part of the VO's use. One definition for the database query, the API and the dashboard.
 */

/** What finished jobs used in one window. */
export interface UsedFigures {
  /** Accounting records (finished jobs) ended in the window. */
  jobs: number;
  cpuSeconds: number;
  /** CPU seconds × the pilot's DB12 (DIRAC's CPUNormalizationFactor). */
  normalizedCpuSeconds: number;
}

export interface UserUsage {
  vo: string;
  group: string;
  user: string;
  waiting: number;
  running: number;
  day: UsedFigures;
  week: UsedFigures;
}

export interface GroupUsage {
  vo: string;
  group: string;
  /** The configured share, else the default share (1000, DIRAC's JobShare). */
  share: number;
  shareConfigured: boolean;
  /** share / sum of the shares of the VO's active groups (0..1). */
  shareFraction: number;
  waiting: number;
  running: number;
  day: UsedFigures;
  week: UsedFigures;
  /** The group's normalized CPU of the week / the VO's (0..1; 0 when the VO used none). */
  usedFraction: number;
}

export interface UsageReport {
  /** Active groups, by VO then group. */
  groups: GroupUsage[];
  /** Users with jobs waiting or running, or records in the week, by VO, group, user. */
  users: UserUsage[];
}

/** The answer of `GET /api/usage` (dates as ISO strings). */
export interface UsageAnswer extends UsageReport {
  daySince: string;
  weekSince: string;
  defaultShare: number;
}
