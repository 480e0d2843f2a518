import { describe, expect, it } from 'vitest';
import { toCpuSegment, validSegments } from '../../core/cpu-segments.js';
import { DEFAULT_CPU_SEGMENTS } from '../../core/job-model.js';

describe('toCpuSegment', () => {
  const segments = [100, 1000, 10_000];

  it('rounds up to the first segment at or above the value', () => {
    expect(toCpuSegment(1, segments)).toBe(100);
    expect(toCpuSegment(100, segments)).toBe(100);
    expect(toCpuSegment(101, segments)).toBe(1000);
    expect(toCpuSegment(1000, segments)).toBe(1000);
    expect(toCpuSegment(9999, segments)).toBe(10_000);
  });

  it('gives the last segment to values above it', () => {
    expect(toCpuSegment(10_001, segments)).toBe(10_000);
    expect(toCpuSegment(1e9, segments)).toBe(10_000);
  });

  it("uses DIRAC's intervals by default", () => {
    expect(toCpuSegment(36_000, DEFAULT_CPU_SEGMENTS)).toBe(43_200);
    expect(toCpuSegment(86_400, DEFAULT_CPU_SEGMENTS)).toBe(86_400);
    expect(toCpuSegment(500_000, DEFAULT_CPU_SEGMENTS)).toBe(518_400);
    expect(toCpuSegment(2_000_000, DEFAULT_CPU_SEGMENTS)).toBe(1_080_000);
  });

  it('falls back to the defaults when the segments are unusable', () => {
    expect(toCpuSegment(36_000, [])).toBe(43_200);
    expect(toCpuSegment(36_000, [1000, 100])).toBe(43_200);
  });
});

describe('validSegments', () => {
  it('keeps strictly increasing positive segments', () => {
    const s = [1, 2, 3];
    expect(validSegments(s)).toBe(s);
  });

  it.each([
    ['empty', []],
    ['decreasing', [10, 5]],
    ['repeated', [10, 10, 20]],
    ['zero', [0, 10]],
    ['negative', [-5, 10]],
    ['infinite', [10, Number.POSITIVE_INFINITY]],
    ['NaN', [Number.NaN]],
  ])('replaces %s segments by the defaults', (_label, s) => {
    expect(validSegments(s)).toBe(DEFAULT_CPU_SEGMENTS);
  });
});
