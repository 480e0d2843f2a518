import { describe, expect, it } from 'vitest';
import {
  ARCHIVE_OVERHEAD_BYTES,
  ArchiveCheck,
  checkArchiveEntry,
  DEFAULT_MAX_RATIO,
  ENTRY_OVERHEAD_BYTES,
  expansionLimit,
  ExpansionBudget,
  RATIO_FLOOR_BYTES,
  MAX_REPORTED_PROBLEMS,
  normalizeArchivePath,
  pathPrefixes,
  type ArchiveEntry,
  type ArchiveState,
} from '../../core/archive-safety.js';

const limits = { maxEntries: 100, maxBytes: 1000 };
const file = (path: string, size = 1): ArchiveEntry => ({ path, type: 'File', size });
const link = (path: string, linkpath: string): ArchiveEntry => ({ path, type: 'SymbolicLink', linkpath, size: 0 });
const hard = (path: string, linkpath: string): ArchiveEntry => ({ path, type: 'Link', linkpath, size: 0 });

/** The problem of the last entry after checking all of them in one state. */
function check(...entries: ArchiveEntry[]): string | null {
  const state: ArchiveState = { entries: 0, bytes: 0 };
  let last: string | null = null;
  for (const e of entries) last = checkArchiveEntry(e, state, limits);
  return last;
}

describe('normalizeArchivePath', () => {
  it.each([
    ['a/b', 'a/b'],
    ['./a//b/', 'a/b'],
    ['a/./b/../c', 'a/c'],
    ['', '.'],
    ['./', '.'],
    ['../x', '../x'],
    ['a/../../x', '../x'],
    ['/etc/passwd', '/etc/passwd'],
    ['/../etc', '/etc'],
    ['a\\..\\..\\x', '../x'],
    ['C:/x', '/x'],
  ])('%j -> %j', (input, expected) => {
    expect(normalizeArchivePath(input)).toBe(expected);
  });

  it('lists proper prefixes', () => {
    expect(pathPrefixes('a/b/c')).toEqual(['a', 'a/b']);
    expect(pathPrefixes('a')).toEqual([]);
  });
});

describe('checkArchiveEntry: paths', () => {
  it('accepts plain files and directories', () => {
    expect(check(file('a.txt'))).toBeNull();
    expect(check({ path: 'dir/', type: 'Directory', size: 0 })).toBeNull();
    expect(check({ path: './', type: 'Directory', size: 0 })).toBeNull();
    expect(check(file('./dir/sub/x.dat'))).toBeNull();
  });

  it('refuses absolute paths', () => {
    expect(check(file('/etc/passwd'))).toBe('absolute path /etc/passwd');
    expect(check(file('C:/Windows/x'))).toBe('absolute path C:/Windows/x');
    expect(check(file('\\\\host\\share'))).toMatch(/^absolute path/);
  });

  it('refuses paths that leave the directory or use ..', () => {
    expect(check(file('../x'))).toBe('path leaves the directory: ../x');
    expect(check(file('a/../../x'))).toBe('path leaves the directory: a/../../x');
    expect(check(file('a/../b'))).toBe("path contains '..': a/../b");
    expect(check(file('..\\x'))).toBe('path leaves the directory: ..\\x');
  });

  it('refuses a file that would replace the directory itself, and empty paths', () => {
    expect(check(file('./'))).toMatch(/would replace the directory itself/);
    expect(check(file(''))).toBe('entry without a path');
  });

  it('refuses devices, FIFOs and types tar would skip', () => {
    expect(check({ path: 'null', type: 'CharacterDevice', size: 0 })).toBe('device or fifo entry null');
    expect(check({ path: 'sda', type: 'BlockDevice', size: 0 })).toBe('device or fifo entry sda');
    expect(check({ path: 'p', type: 'FIFO', size: 0 })).toBe('device or fifo entry p');
    expect(check({ path: 's', type: 'SparseFile', size: 0 })).toBe('unsupported entry type SparseFile: s');
  });

  it('ignores header-only entries (pax headers) and does not count them', () => {
    const state: ArchiveState = { entries: 0, bytes: 0 };
    expect(checkArchiveEntry({ path: 'PaxHeader/x', type: 'ExtendedHeader', size: 50 }, state, limits)).toBeNull();
    expect(state).toEqual({ entries: 0, bytes: 0 });
  });
});

describe('checkArchiveEntry: links', () => {
  it('accepts symbolic links that stay inside', () => {
    expect(check(link('l', 'a.txt'))).toBeNull();
    expect(check(link('d/l', '../a.txt'))).toBeNull();
    expect(check(link('d/e/l', '../../a.txt'))).toBeNull();
    expect(check(link('d/l', './x/./y'))).toBeNull();
    expect(check(link('d/l', '..'))).toBeNull(); // the directory itself
  });

  it('refuses symbolic links that escape', () => {
    expect(check(link('a', '../../etc'))).toBe('link a -> ../../etc escapes the directory');
    expect(check(link('d/l', '../../x'))).toBe('link d/l -> ../../x escapes the directory');
    expect(check(link('l', '/etc'))).toBe('link l -> /etc escapes the directory (absolute target)');
    expect(check(link('l', ''))).toBe('link l has no target');
  });

  it("refuses '..' after a name in a link target (the name may itself be a link)", () => {
    expect(check(link('up', '.'), link('esc', 'up/..'))).toMatch(/^link esc -> up\/\.\. uses '\.\.' after a name/);
  });

  it('refuses entries written through a symbolic link of the same archive', () => {
    expect(check(link('up', '.'), file('up/x'))).toBe('path goes through the symbolic link up: up/x');
    expect(check(link('d', 'sub'), file('d/e/f'))).toBe('path goes through the symbolic link d: d/e/f');
    // A later directory of the same name replaces the link.
    expect(check(link('d', 'sub'), { path: 'd', type: 'Directory', size: 0 }, file('d/x'))).toBeNull();
  });

  it('checks hard links', () => {
    expect(check(file('a'), hard('b', 'a'))).toBeNull();
    expect(check(hard('h', '/etc/shadow'))).toBe('hard link h => /etc/shadow points outside the directory');
    expect(check(hard('h', '../x'))).toBe('hard link h => ../x leaves the directory');
    expect(check(hard('h', 'a/../b'))).toBe('hard link h => a/../b leaves the directory');
    expect(check(link('d', 'sub'), hard('h', 'd/x'))).toBe('hard link h => d/x goes through the symbolic link d');
    expect(check(hard('h', ''))).toBe('hard link h has no target');
  });
});

describe('checkArchiveEntry: limits', () => {
  it('counts entries and refuses one too many', () => {
    const state: ArchiveState = { entries: 0, bytes: 0 };
    const small = { maxEntries: 2, maxBytes: 1000 };
    expect(checkArchiveEntry(file('a'), state, small)).toBeNull();
    expect(checkArchiveEntry(file('b'), state, small)).toBeNull();
    expect(checkArchiveEntry(file('c'), state, small)).toBe('more than 2 entries');
    expect(state.entries).toBe(3);
  });

  it('sums file sizes and refuses one byte too many', () => {
    const state: ArchiveState = { entries: 0, bytes: 0 };
    const small = { maxEntries: 10, maxBytes: 100 };
    expect(checkArchiveEntry(file('a', 60), state, small)).toBeNull();
    expect(checkArchiveEntry({ path: 'd', type: 'Directory', size: 4096 }, state, small)).toBeNull();
    expect(checkArchiveEntry(file('b', 40), state, small)).toBeNull();
    expect(checkArchiveEntry(file('c', 1), state, small)).toBe('more than 100 bytes unpacked');
  });
});

describe('ArchiveCheck', () => {
  it('keeps the first problems, counts all, and names the archive', () => {
    const c = new ArchiveCheck(limits);
    for (let i = 0; i < 15; i++) c.add(file(`/abs${i}`));
    c.add(file('ok'));
    expect(c.count).toBe(15);
    expect(c.problems).toHaveLength(MAX_REPORTED_PROBLEMS);
    expect(c.describe('SB:abc')).toBe(
      `unsafe archive SB:abc: ${Array.from({ length: 10 }, (_, i) => `absolute path /abs${i}`).join('; ')} (and 5 more problems)`,
    );
  });

  it('records a limit once and says reading stopped', () => {
    const c = new ArchiveCheck({ maxEntries: 1, maxBytes: 100 });
    c.add(file('a'));
    c.add(file('b'));
    c.add(file('c'));
    expect(c.limitExceeded).toBe(true);
    expect(c.count).toBe(1);
    expect(c.describe('x.tgz')).toBe('unsafe archive x.tgz: more than 1 entries; reading stopped at the limit');
  });

  it('describes nothing when all is well', () => {
    const c = new ArchiveCheck(limits);
    c.add(file('a'));
    expect(c.describe('x')).toBeNull();
  });
});

describe('ExpansionBudget: what an archive may expand to while it streams', () => {
  const MiB = 1024 * 1024;
  const big = { maxEntries: 10, maxBytes: 1024 * MiB };

  it('is the lower of ratio times the archive size (past a floor) and the bytes plus tar overhead', () => {
    expect(DEFAULT_MAX_RATIO).toBe(200);
    // A 64 KiB archive: 200 times its size.
    expect(expansionLimit(big, 64 * 1024)).toEqual({ bytes: 200 * 64 * 1024, byRatio: true });
    // A 100-byte archive: the floor, not 20 KB (tar's own zero blocks compress ~200:1).
    expect(expansionLimit(big, 100)).toEqual({ bytes: RATIO_FLOOR_BYTES, byRatio: true });
    // A large archive: its content limit plus tar's headers and padding.
    const small = { maxEntries: 10, maxBytes: MiB };
    expect(expansionLimit(small, 50 * MiB)).toEqual({ bytes: MiB + 10 * ENTRY_OVERHEAD_BYTES + ARCHIVE_OVERHEAD_BYTES, byRatio: false });
    expect(expansionLimit({ ...big, maxRatio: 10 }, 10 * MiB).bytes).toBe(100 * MiB);
  });

  it('counts every byte and names the limit passed, once past it', () => {
    const b = new ExpansionBudget(big, 65_331, 0);
    expect(b.expand(b.limit)).toBeNull();
    expect(b.expand(1)).toBe('expands beyond 200 times its size (65331 bytes)');
    const s = new ExpansionBudget({ maxEntries: 1, maxBytes: 1000 }, 50 * MiB, 0);
    expect(s.expand(s.limit + 1)).toBe(
      `expands to more than ${1000 + ENTRY_OVERHEAD_BYTES + ARCHIVE_OVERHEAD_BYTES} bytes (limit 1000 bytes of content)`,
    );
  });

  it('has a deadline (60 s unless the limits say), shared by every pass', () => {
    const b = new ExpansionBudget(big, 1000, 5000);
    expect(b.timeUp(64_999)).toBeNull();
    expect(b.timeUp(65_000)).toBe('took longer than 60 s');
    expect(b.msLeft(15_000)).toBe(50_000);
    const next = b.nextPass();
    b.expand(100);
    expect(next.expanded).toBe(0);
    expect(next.deadline).toBe(b.deadline);
    const quick = new ExpansionBudget({ ...big, maxSeconds: 0.5 }, 1000, 0);
    expect(quick.timeUp(500)).toBe('took longer than 0.5 s');
    expect(quick.msLeft(900)).toBe(0);
  });
});
