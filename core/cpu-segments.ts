/**
 * CPU-time segments: a job's requested CPUTime is rounded up to the next segment boundary so
 * that jobs asking for 3000 s and 3500 s land in the same task queue (DIRAC's
 * taskQueueCPUTimeIntervals). Values are normalized seconds.
 */

import { DEFAULT_CPU_SEGMENTS } from './job-model.js';

/**
 * The segments to use: `segments` when they are a non-empty, strictly increasing list of
 * positive finite numbers, else `DEFAULT_CPU_SEGMENTS` (a bad configuration must not break
 * segmentation).
 */
export function validSegments(segments: readonly number[]): readonly number[] {
  const ok = segments.length > 0 && segments.every((s, i) => Number.isFinite(s) && s > 0 && (i === 0 || s > (segments[i - 1] as number)));
  return ok ? segments : DEFAULT_CPU_SEGMENTS;
}

/**
 * The first segment at or above `cpuTime`; a value above the last segment gets the last one.
 * Invalid `segments` are replaced by the defaults (see `validSegments`).
 */
export function toCpuSegment(cpuTime: number, segments: readonly number[]): number {
  const usable = validSegments(segments);
  const last = usable[usable.length - 1] as number;
  return usable.find((s) => s >= cpuTime) ?? last;
}
