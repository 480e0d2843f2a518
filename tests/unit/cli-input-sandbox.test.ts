import { describe, expect, it } from 'vitest';
import { parseJdl, getAttribute } from '../../core/jdl/index.js';
import { isLocalEntry, offsetOf, planInputSandbox, rewriteInputSandbox, valueEnd } from '../../core/jdl/input-sandbox.js';

const SB = `SB:${'a'.repeat(64)}`;

describe('isLocalEntry', () => {
  it('LFN:, SB: and URLs are not local', () => {
    expect(isLocalEntry('run.sh')).toBe(true);
    expect(isLocalEntry('data/in.txt')).toBe(true);
    expect(isLocalEntry('/abs/path')).toBe(true);
    expect(isLocalEntry('LFN:/vo/x')).toBe(false);
    expect(isLocalEntry('lfn:/vo/x')).toBe(false);
    expect(isLocalEntry(SB)).toBe(false);
    expect(isLocalEntry('https://example.org/x')).toBe(false);
  });

  it('parametric placeholders are not local: the server gives each job its value', () => {
    expect(isLocalEntry('%s')).toBe(false);
    expect(isLocalEntry('%(InputData)s')).toBe(false);
    expect(isLocalEntry('100%.txt')).toBe(true);
  });
});

describe('planInputSandbox', () => {
  it('none when there is no InputSandbox, no local entry, or a syntax error', () => {
    expect(planInputSandbox('[ Executable = "a"; ]')).toBeNull();
    expect(planInputSandbox('[ Executable = "a"; InputSandbox = { "LFN:/v/x" }; ]')).toBeNull();
    expect(planInputSandbox('[ Executable = "a; InputSandbox = { "x" }; ]')).toBeNull();
  });

  it('finds the local entries and the value span', () => {
    const text = '[\n  Executable = "run.sh";\n  InputSandbox = { "run.sh", "LFN:/vo/in.dat", "data/x.txt" };\n  CPUTime = 3600;\n]';
    const plan = planInputSandbox(text)!;
    expect(plan.local).toEqual(['run.sh', 'data/x.txt']);
    expect(text.slice(...plan.span)).toBe('{ "run.sh", "LFN:/vo/in.dat", "data/x.txt" }');
  });

  it('a single string value', () => {
    const text = '[ Executable = "run.sh"; InputSandbox = "run.sh"; ]';
    const plan = planInputSandbox(text)!;
    expect(text.slice(...plan.span)).toBe('"run.sh"');
  });
});

describe('rewriteInputSandbox', () => {
  it('replaces local entries by one SB: entry and keeps the others', () => {
    const text = '[\n  Executable = "run.sh";\n  InputSandbox = { "run.sh", "LFN:/vo/in.dat", "x.txt" };\n  CPUTime = 3600;\n]';
    const out = rewriteInputSandbox(text, planInputSandbox(text)!, SB);
    expect(getAttribute(parseJdl(out), 'InputSandbox')?.value).toEqual([SB, 'LFN:/vo/in.dat']);
    expect(getAttribute(parseJdl(out), 'CPUTime')).toMatchObject({ value: 3600, line: 4, column: 3 });
  });

  it('keeps line numbers when the list spans several lines', () => {
    const text = '[\n  InputSandbox = {\n    "a.txt",\n    "b.txt"\n  };\n  Executable = "run.sh";\n  CPUTime = 5;\n]';
    const out = rewriteInputSandbox(text, planInputSandbox(text)!, SB);
    const ad = parseJdl(out);
    expect(getAttribute(ad, 'InputSandbox')?.value).toEqual([SB]);
    expect(getAttribute(ad, 'CPUTime')).toMatchObject({ line: 7, column: 3 });
    expect(out.split('\n')).toHaveLength(text.split('\n').length);
  });

  it('escapes quotes and backslashes in kept entries', () => {
    const text = '[ Executable = "r"; InputSandbox = { "x", "LFN:/a\\"b" }; ]';
    const out = rewriteInputSandbox(text, planInputSandbox(text)!, SB);
    expect(getAttribute(parseJdl(out), 'InputSandbox')?.value).toEqual([SB, 'LFN:/a"b']);
  });
});

describe('offsets', () => {
  it('offsetOf and valueEnd', () => {
    const text = 'ab\ncd = { "x;}", { "y" } };\nz';
    expect(offsetOf(text, 2, 6)).toBe(8);
    expect(text.slice(8, valueEnd(text, 8))).toBe('{ "x;}", { "y" } }');
    expect(valueEnd('a = 12;', 4)).toBe(6);
  });
});
