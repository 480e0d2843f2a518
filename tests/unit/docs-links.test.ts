/**
 * The documentation stays inside the repository: every relative link of every markdown file
 * resolves to a file or folder of the repository, and no markdown file names a path outside it
 * (a planning folder beside the checkout, a machine path such as /work/ or /tmp/, a `.md` file
 * that does not exist here). A reader of a clone, or of the repository on a forge, can follow
 * every pointer.
 *
 * Code comments are held to the same: a source file or script names no `.md` file that is not in
 * the repository, and never the planning folder beside the checkout.
 *
 * The files are those git knows (tracked, or new and not ignored), so build output and
 * scratch directories are never read.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '../..');

/** Files of the repository matching `patterns`: tracked ones and new ones that are not ignored. */
function repositoryFiles(...patterns: string[]): string[] {
  let out: string;
  try {
    out = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '--', ...patterns], {
      cwd: root,
      encoding: 'utf8',
    });
  } catch (e) {
    throw new Error(`docs-links: cannot list the files with git in ${root}: ${(e as Error).message}`, { cause: e });
  }
  const files = [...new Set(out.split('\n').filter((f) => f !== ''))];
  // A tracked file deleted in the working tree is no longer part of it.
  return files.filter((f) => existsSync(join(root, f))).sort();
}

const markdownFiles = () => repositoryFiles('*.md');

/** The text without fenced code blocks (links inside them are examples, not links). */
function withoutFences(text: string): string {
  return text.replace(/^(\s*)(```|~~~)[^\n]*\n[\s\S]*?^\1\2[^\n]*$/gm, (block) => block.replace(/[^\n]/g, ' '));
}

/** The text without code spans either: for links only, since a code span shows a link's syntax. */
function withoutCode(text: string): string {
  return withoutFences(text).replace(/`[^`\n]*`/g, (span) => ' '.repeat(span.length));
}

export interface Link {
  line: number;
  target: string;
}

/** Inline links and images `[text](target "title")` and reference definitions `[x]: target`. */
export function linksOf(text: string): Link[] {
  const clean = withoutCode(text);
  const links: Link[] = [];
  const lineOf = (index: number) => clean.slice(0, index).split('\n').length;
  for (const m of clean.matchAll(/\]\(\s*(<[^>]*>|[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)(?:\s+["'(][^)]*)?\)/g)) {
    links.push({ line: lineOf(m.index), target: (m[1] as string).replace(/^<|>$/g, '') });
  }
  for (const m of clean.matchAll(/^ {0,3}\[[^\]\n]+\]:\s*(\S+)/gm)) {
    links.push({ line: lineOf(m.index), target: m[1] as string });
  }
  return links;
}

/** Why a link target of `file` (relative to the repository) is broken, or null when it resolves. */
export function brokenLink(file: string, target: string): string | null {
  if (target === '' || target.startsWith('#')) return null; // an anchor in the same page
  if (/^[a-z][a-z0-9+.-]*:/i.test(target)) {
    // A scheme: web pages are fine; a file: URL names a machine path.
    return /^file:/i.test(target) ? 'a file: URL names a path on one machine' : null;
  }
  if (target.startsWith('//')) return null; // protocol-relative URL
  const path = decodeURI(target.replace(/[?#].*$/, ''));
  if (isAbsolute(path)) return 'an absolute path names a place on one machine, not in the repository';
  const resolved = resolve(root, dirname(file), path);
  const inside = relative(root, resolved);
  if (inside.startsWith('..') || isAbsolute(inside)) return 'it leaves the repository';
  if (!existsSync(resolved)) return `${inside.split(sep).join('/')} does not exist`;
  return null;
}

/** Mentions of places outside the repository, wherever they appear (code spans included). */
const OUTSIDE = [
  { re: /(?:^|[^\w.-])(?:\.\.\/)+shared\b/g, why: 'the planning folder beside the checkout' },
  { re: /(?:^|[^\w.])\/(?:work|tmp)\/[\w.-]/g, why: 'a machine path' },
];

/**
 * `.md` paths named in the text (in code spans or prose) that are not files of the repository: a
 * path must exist beside the file or from the root; a bare name (`DESIGN.md`) must be the name
 * of one of the repository's markdown files (`names`).
 */
function missingMarkdownPaths(file: string, text: string, names: ReadonlySet<string>): string[] {
  const found: string[] = [];
  for (const m of withoutFences(text).matchAll(/(?:^|[\s`'"(])((?:\.{1,2}\/)*\w[\w.-]*(?:\/[\w.-]+)*\.md)\b/g)) {
    const path = m[1] as string;
    if (!path.includes('/')) {
      if (!names.has(path)) found.push(path);
      continue;
    }
    const candidates = [resolve(root, dirname(file), path), resolve(root, path)].filter((c) => !relative(root, c).startsWith('..'));
    if (!candidates.some((c) => existsSync(c))) found.push(path);
  }
  return found;
}

/** Every problem of one markdown file, as `file:line: message`. */
function problemsOf(file: string, names: ReadonlySet<string>): string[] {
  const text = readFileSync(join(root, file), 'utf8');
  const problems: string[] = [];
  for (const { line, target } of linksOf(text)) {
    const why = brokenLink(file, target);
    if (why !== null) problems.push(`${file}:${line}: link ${target}: ${why}`);
  }
  const lineOf = (index: number) => text.slice(0, index).split('\n').length;
  for (const { re, why } of OUTSIDE) {
    for (const m of text.matchAll(re)) problems.push(`${file}:${lineOf(m.index)}: names ${m[0].trim()}…: ${why}, outside the repository`);
  }
  for (const path of missingMarkdownPaths(file, text, names)) {
    problems.push(`${file}: names ${path}, which is not a file of the repository`);
  }
  return problems;
}

describe('docs: every markdown link stays inside the repository', () => {
  const files = markdownFiles();
  const names = new Set(files.map((f) => f.split('/').pop() as string));

  it('finds the markdown files (README.md and docs/ARCHITECTURE.md among them)', () => {
    expect(files).toContain('README.md');
    expect(files).toContain('docs/ARCHITECTURE.md');
  });

  it('every relative link resolves to a file of the repository, and none names a path outside it', () => {
    expect(files.flatMap((f) => problemsOf(f, names))).toEqual([]);
  });

  it('no source file or script names a markdown file outside the repository', () => {
    const self = relative(root, import.meta.filename);
    const sources = repositoryFiles('*.ts', '*.mjs', '*.js', '*.sh', '*.yaml', '*.yml').filter((f) => f !== self);
    expect(sources.length).toBeGreaterThan(100);
    const planning = OUTSIDE[0] as { re: RegExp };
    const problems = sources.flatMap((f) => {
      const text = readFileSync(join(root, f), 'utf8');
      const named = missingMarkdownPaths(f, text, names).map((path) => `${f}: names ${path}, which is not a file of the repository`);
      return [...named, ...[...text.matchAll(planning.re)].map(() => `${f}: names the planning folder beside the checkout`)];
    });
    expect(problems).toEqual([]);
  });

  it('README.md points at the architecture page', () => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    expect(linksOf(readme).map((l) => l.target)).toContain('docs/ARCHITECTURE.md');
  });

  it('the checker finds what it must (and only that)', () => {
    const sample = [
      '[ok](core/README.md) [anchor](#layout) [web](https://example.org/x) ![img](docs/ARCHITECTURE.md#top)',
      '`[not a link](nowhere.md)`',
      '```',
      '[inside a fence](nowhere-either.md)',
      '```',
      '[gone](core/missing.md) [up](../shared/DESIGN.md) [abs](/work/main/README.md)',
      '[ref]: ../../outside.md',
    ].join('\n');
    const links = linksOf(sample);
    expect(links.map((l) => l.target)).toEqual([
      'core/README.md',
      '#layout',
      'https://example.org/x',
      'docs/ARCHITECTURE.md#top',
      'core/missing.md',
      '../shared/DESIGN.md',
      '/work/main/README.md',
      '../../outside.md',
    ]);
    expect(links.map((l) => brokenLink('README.md', l.target) !== null)).toEqual([false, false, false, false, true, true, true, true]);
    expect(links.find((l) => l.target === 'core/missing.md')?.line).toBe(6);
    expect(brokenLink('tests/README.md', '../docs/ARCHITECTURE.md')).toBeNull();
    const text = 'See `../shared/DESIGN.md`, `reference/dirac-wms.md`, STYLE.md, `core/README.md` and RESULTS.md.';
    expect(missingMarkdownPaths('README.md', text, new Set(['README.md', 'RESULTS.md']))).toEqual([
      '../shared/DESIGN.md',
      'reference/dirac-wms.md',
      'STYLE.md',
    ]);
    expect(OUTSIDE.some(({ re }) => [...'see `../shared/DESIGN.md`'.matchAll(re)].length > 0)).toBe(true);
    expect(OUTSIDE.some(({ re }) => [...'logs under /tmp/run-1'.matchAll(re)].length > 0)).toBe(true);
    expect(OUTSIDE.some(({ re }) => [...'`--tmpfs /tmp` and dist/web/'.matchAll(re)].length > 0)).toBe(false);
  });
});
