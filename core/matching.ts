/**
 * What a pilot offers (its resource description) and the match predicate between a resource
 * and a task queue. The SQL in db/queries/match.ts says the same thing for the hot path; this
 * pure version serves `explain` and the tests that keep the two in step.
 */
import type { JobRequirements } from './job-model.js';

export interface ResourceDescription {
  /** The site the pilot runs at (mandatory). */
  site: string;
  /** Computing element and queue the pilot came through. */
  ce?: string;
  queue?: string;
  platform?: string;
  /** Capabilities the resource offers; a task queue's tags must all be offered. */
  tags: string[];
  /** Tags a task queue must carry to be taken (multi-core pilots refusing single-core jobs). */
  requiredTags: string[];
  processors: number;
  ramMb: number;
  gpus: number;
  /** CPU work the pilot can still deliver: time left x DB12 score (normalized seconds). */
  cpuWork: number;
  /** Restrict to one VO (a pilot serves its VO), and optionally to some groups. */
  vo?: string;
  ownerGroups?: string[];
  /** Job types the resource accepts; absent means any except those reserved for banned sites. */
  jobTypes?: string[];
}

/** The fields of a task queue the predicate reads (JobRequirements minus owner and priority). */
export type TaskQueueRequirements = Omit<JobRequirements, 'owner' | 'priority'> & { owner?: string };

/** Why a task queue is not eligible for a resource; empty means it matches. */
export type MatchRejection = string;
