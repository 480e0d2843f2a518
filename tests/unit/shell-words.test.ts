/**
 * Splitting a command line into words (pilot/shell-words.ts): the job wrapper's forgiving
 * Arguments and the DIRAC workflow's `shlex.split`, which refuses an unclosed quote or a
 * trailing backslash.
 */
import { describe, expect, it } from 'vitest';
import { shlexSplit, WorkflowError } from '../../pilot/dirac-workflow.js';
import { splitWords } from '../../pilot/shell-words.js';

describe('splitWords', () => {
  it.each([
    ['a b  c', ['a', 'b', 'c']],
    [`-c 'echo "x" \\y' z`, ['-c', 'echo "x" \\y', 'z']],
    ['"a \\"b\\" c \\\\ \\n" d', ['a "b" c \\ \\n', 'd']],
    ["'' x", ['', 'x']],
    ['a\\ b', ['a b']],
    ['  ', []],
  ])('%j, either way', (input, expected) => {
    expect(splitWords(input)).toEqual(expected);
    expect(shlexSplit(input)).toEqual(expected);
  });

  it('forgives an unclosed quote and a trailing backslash; shlex refuses them with its messages', () => {
    expect(splitWords('a "b c')).toEqual(['a', 'b c']);
    expect(splitWords('a b\\')).toEqual(['a', 'b\\']);
    expect(() => shlexSplit('a "b c')).toThrow(new WorkflowError('No closing quotation'));
    expect(() => shlexSplit('a b\\')).toThrow(new WorkflowError('No escaped character'));
    expect(() => shlexSplit("a 'b")).toThrow(WorkflowError);
  });
});
