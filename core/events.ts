/**
 * The messages of the event stream (`GET /api/events`, services/plugins/events.ts) as its
 * clients read them: the dashboard and the CLI. Pure types, one definition for both ends.
 */

export interface JobEvent {
  type: 'job';
  id: number;
  status: string;
  minorStatus: string;
  applicationStatus: string;
  site: string;
  at: string;
}

export interface PilotEvent {
  type: 'pilot';
  id: number;
  status: string;
  statusReason: string;
  site: string;
  ce: string;
  at: string;
}

export interface SiteEvent {
  type: 'site';
  kind: 'site' | 'ce' | 'queue';
  site: string;
  ce: string | null;
  queue: string | null;
  banned: boolean;
  paused: boolean;
  pausedUntil: string | null;
  reason: string | null;
  at: string;
}

export type WmsEvent = JobEvent | PilotEvent | SiteEvent;
