/**
 * Parametric (bulk) jobs: one JDL that stands for many jobs, one per parameter value, as DIRAC's
 * ParametricJob expands them.
 *
 * A JDL is parametric when it has an attribute `Parameters` or `Parameters.<name>`. It defines
 * sequences of N values, one value per job:
 *
 * - the unnamed sequence, from `Parameters`: either a list (`{ "a", "b", "c" }`, or bare words
 *   `{ a, b, c }`) or a number of jobs N, whose values are `ParameterStart` (default 1), then
 *   each previous value times `ParameterFactor` (default 1) plus `ParameterStep` (default 0);
 * - a named sequence `x`, from `Parameters.x` (a list, or a number of jobs) or, with
 *   `Parameters = N`, from `ParameterStart.x` / `ParameterStep.x` / `ParameterFactor.x` alone
 *   (DIRAC's TEST_JDL_MULTI: start 1, step 1, factor 2 give 1, 3, 7). All sequences have the
 *   same length. Start, step and factor may be quoted (`"1.5"`), as DIRAC strips quotes.
 *
 * Values print as DIRAC (Python) prints them. A list value keeps its spelling (`1.0`, `02`,
 * `true`). A numeric sequence follows Python's types: with whole start, step and factor every
 * value is an exact integer; when any of them is written as a float (with `.` or an exponent),
 * every value is a float printed by Python's `repr` (`1.0`, `1.2000000000000002`, `1e+16`).
 * Values that overflow (Python would reach `inf`) are refused.
 *
 * Placeholders, in every string or bare word of the JDL (inside lists and nested ads too):
 * `%s` is the value of the unnamed sequence, `%(x)s` that of sequence `x`, `%n` the job's index
 * zero-padded to the width of N-1. Nothing else is touched: `%j` is left for the database (the
 * job ID), `%%` stays `%%` (also in `%%s`, which DIRAC's plain text replace would turn into `%`
 * and the value), and `%Y`, `%d`, a lone `%` stay as written. A `%(x)s` that names no sequence
 * is refused (DIRAC leaves it in silently); `%s` with no unnamed sequence stays as written.
 *
 * List-valued parameters (`Parameters.InputData = {{"/vo/a","/vo/b"},{"/vo/c"}}`, what DIRAC's
 * job API writes, quoted or bare): a bare placeholder that is a whole attribute value
 * (`InputData = %(InputData)s;`) becomes the job's list; a bare placeholder that is a whole list
 * element (`InputData = { %(InputData)s, /vo/common }`) is spliced into the list, as DIRAC strips
 * the braces there. Inside a quoted string, or a bare word with more text around it, a list
 * value is written as the text DIRAC's readers give for it: `{/vo/a,/vo/b}`. After
 * substitution, a bare word is read again as a bare word: `CPUTime = %s;` with the value `100`
 * is the number 100, as in DIRAC, where substitution is plain text.
 *
 * Each job gets DIRAC's attributes: `Parameter` (the unnamed sequence's value) and
 * `Parameter.<x>` as strings (a list value stays a list), and `ParameterNumber` (the index);
 * the `Parameters*`, `ParameterStart*`, `ParameterStep*` and `ParameterFactor*` attributes, and
 * any `Parameter*` the user wrote, are removed.
 *
 * Where we differ from DIRAC on purpose (core/jdl/README.md): named sequences alone (no
 * `Parameters`) are expanded, where DIRAC keeps one job with its placeholders; `Parameters.x =
 * N` is a numeric named sequence, which DIRAC refuses; a count written `1e1` or `3.0` is read
 * (DIRAC's getAttributeInt cannot, and submits one job); an unknown `%(x)s` is refused; `%%s`,
 * `%%n` and `%%(x)s` stay as written; values are not substituted again.
 *
 * Substitution may produce at most `MAX_EXPANDED_SIZE` (64 MB) of text over all the jobs; more
 * is refused before it is built (a 16 MB JDL could otherwise ask for terabytes).
 *
 * A JDL that is not parametric is left as written: `%` there is text (`date +%Y-%m-%d`,
 * `printf %s`), except `%j`, which the database replaces.
 */

import { jdlError, type JdlProblem } from '../errors.js';
import {
  bareWordValue,
  isBareString,
  makeAttribute,
  quoteString,
  serializeJdl,
  shorten,
  spellingOf,
  type JdlAd,
  type JdlAttribute,
  type JdlSpelling,
  type JdlValue,
} from './parser.js';

/** One job of a parametric JDL. */
export interface ExpandedJob {
  /** The job's ad: placeholders substituted, `Parameter*` attributes set. */
  ad: JdlAd;
  /** The index, from 0 (also the `ParameterNumber` attribute). */
  number: number;
  /**
   * The values substituted, as text, by attribute name: `Parameter` and `Parameter.<name>`
   * (`"1.0"`; a list value as `{/vo/a,/vo/b}`).
   */
  values: Record<string, string>;
}

/** A value with how it is written in JDL text (a string's spelling has its quotes if quoted). */
interface Spelled {
  value: JdlValue;
  spelling: JdlSpelling;
}

/** The attributes that define one sequence: `key` is '' for the unnamed one. */
interface SequenceAttributes {
  key: string;
  parameters?: JdlAttribute;
  start?: JdlAttribute;
  step?: JdlAttribute;
  factor?: JdlAttribute;
  /** The first of them in the text: where its problems and its `Parameter*` attribute point. */
  origin: JdlAttribute;
}

interface Sequence {
  key: string;
  origin: JdlAttribute;
  values: Spelled[];
}

/** One job's values while its attributes are substituted. */
interface Job {
  index: string;
  /** By sequence key ('' for the unnamed one). */
  values: Map<string, Spelled>;
  /** The same, as text for a string. */
  texts: Map<string, string>;
  /** `spellingOf` each attribute of the original ad (computed once, not once per job). */
  spellings: Map<JdlAttribute, JdlSpelling | undefined>;
  /** Shared by all the jobs of one expansion. */
  budget: Budget;
}

/**
 * What substitution may still produce, in characters of text (and `ELEMENT_SIZE` per element
 * of a list), over all the jobs of one expansion. Without it a 16 MB JDL could ask for terabytes: a long value and
 * a text of many `%s`, or a long list spliced into a list of many placeholders.
 */
interface Budget {
  left: number;
  /** Where the refusal points: the first `Parameters*` attribute. */
  origin: JdlAttribute;
}

/**
 * At most this much substituted text (and list elements) per expansion: 10,000
 * jobs of 6 KB each, far more than any real parametric JDL (a few hundred bytes per job).
 */
export const MAX_EXPANDED_SIZE = 64 * 1024 * 1024;
/** What one list element costs in that budget (its slots in two arrays, roughly in bytes). */
const ELEMENT_SIZE = 16;

const CONTROL_NAME = /^(Parameters|ParameterStart|ParameterStep|ParameterFactor)(?:\.(.+))?$/;
const ROLES = {
  Parameters: 'parameters',
  ParameterStart: 'start',
  ParameterStep: 'step',
  ParameterFactor: 'factor',
} as const;
const OUTPUT_NAME = /^(?:Parameter|ParameterNumber)(?:\..+)?$/;
/** `%(name)s`, matched where the `%` is. */
const NAMED = /%\(([A-Za-z0-9_.]+)\)s/y;
/** A whole bare word that is one placeholder. */
const WHOLE = /^%(?:s|\(([A-Za-z0-9_.]+)\)s)$/;
/** What Python's `int()` accepts (ASCII digits). */
const PYTHON_INT = /^\s*[+-]?\d+(?:_\d+)*\s*$/;
/** What Python's `float()` accepts, less `inf` and `nan`. */
const PYTHON_FLOAT = /^\s*[+-]?(?:\d+(?:_\d+)*(?:\.(?:\d+(?:_\d+)*)?)?|\.\d+(?:_\d+)*)(?:[eE][+-]?\d+(?:_\d+)*)?\s*$/;
/** Integer sequences are exact (as Python's ints) up to the largest double, then refused. */
const LARGEST = BigInt(Number.MAX_VALUE);

/** True when the ad has an attribute whose name starts with `Parameters`. */
export function isParametric(ad: JdlAd): boolean {
  return ad.attributes.some((a) => a.name.startsWith('Parameters'));
}

/**
 * Expands a parametric JDL into its jobs; returns null when the ad is not parametric.
 * Throws `WmsError` `WMS_JDL_PARAMETRIC` (with line and column) when a sequence is malformed,
 * when sequences differ in length, when there would be more than `limits.maxParametricJobs`
 * jobs, or on a `%(x)s` that names no sequence.
 */
export function expandParametric(ad: JdlAd, limits: { maxParametricJobs: number }): ExpandedJob[] | null {
  if (!isParametric(ad)) return null;
  const sequences = readSequences(ad, limits.maxParametricJobs);
  const count = sequences[0]?.values.length ?? 0;
  const width = String(count - 1).length;
  const kept = ad.attributes.filter((a) => !CONTROL_NAME.test(a.name) && !OUTPUT_NAME.test(a.name));
  const templates = kept.map((a) => ({ attribute: a, varies: mentionsPercent(a.value) }));
  const spellings = new Map<JdlAttribute, JdlSpelling | undefined>();
  const origin = sequences[0]?.origin;
  const budget: Budget = { left: MAX_EXPANDED_SIZE, origin: firstCount(ad) };

  const jobs: ExpandedJob[] = [];
  for (let i = 0; i < count; i += 1) {
    const job: Job = {
      index: String(i).padStart(width, '0'),
      values: new Map(),
      texts: new Map(),
      spellings,
      budget,
    };
    const values: Record<string, string> = {};
    const added: JdlAttribute[] = [];
    for (const s of sequences) {
      const value = s.values[i] as Spelled;
      const text = textOf(value);
      job.values.set(s.key, value);
      job.texts.set(s.key, text);
      const name = s.key === '' ? 'Parameter' : `Parameter.${s.key}`;
      values[name] = text;
      added.push(
        Array.isArray(value.value)
          ? madeAt(name, value.value, s.origin, render(value.spelling))
          : madeAt(name, text, s.origin, quoteString(text)),
      );
    }
    added.push(madeAt('ParameterNumber', i, origin, String(i)));
    const attributes = templates.map((t) => (t.varies ? substituteAttribute(t.attribute, job) : t.attribute)).concat(added);
    jobs.push({ ad: { attributes }, number: i, values });
  }
  return jobs;
}

/**
 * For a JDL that is not parametric: the ad as written. `%` there is text (`%Y`, `%s`, `%%`);
 * `%j` is left for the database. Kept so callers treat both kinds of JDL alike.
 */
export function resolvePlaceholders(ad: JdlAd): JdlAd {
  return ad;
}

/**
 * Python's `repr` of a float: the shortest digits that read back as the same double (which is
 * what JavaScript prints too), laid out as Python does: positional when the decimal exponent is
 * from -4 to 15 (`0.0001`, `1000000000000000.0`, always with a `.`), else scientific with a
 * sign and at least two exponent digits (`1e-05`, `1e+16`, `1.5e+300`). `inf`, `-inf` and
 * `nan` for the non-finite values.
 */
export function pythonFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'nan';
  if (!Number.isFinite(x)) return x > 0 ? 'inf' : '-inf';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const sign = x < 0 ? '-' : '';
  const [mantissa = '', exponent = '0'] = Math.abs(x).toExponential().split('e');
  const digits = mantissa.replace('.', '');
  const point = Number(exponent) + 1; // x = 0.<digits> × 10^point
  if (point > 16 || point < -3) {
    const e = point - 1;
    const shown = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${shown}e${e < 0 ? '-' : '+'}${String(Math.abs(e)).padStart(2, '0')}`;
  }
  if (point <= 0) return `${sign}0.${'0'.repeat(-point)}${digits}`;
  if (point >= digits.length) return `${sign}${digits}${'0'.repeat(point - digits.length)}.0`;
  return `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}

/** Reads and checks every `Parameters*` attribute and its controls; throws all problems at once. */
function readSequences(ad: JdlAd, maxJobs: number): Sequence[] {
  const problems: JdlProblem[] = [];
  const groups = new Map<string, SequenceAttributes>();
  for (const attribute of ad.attributes) {
    const match = CONTROL_NAME.exec(attribute.name);
    if (!match) {
      if (attribute.name.startsWith('Parameters')) {
        problems.push(at(attribute, `${attribute.name} is not a parametric attribute: write Parameters or Parameters.<name>`));
      }
      continue;
    }
    const key = match[2] ?? '';
    const group = groups.get(key) ?? { key, origin: attribute };
    groups.set(key, group);
    group[ROLES[match[1] as keyof typeof ROLES]] = attribute;
  }
  if (problems.length > 0) throw jdlError('WMS_JDL_PARAMETRIC', problems);

  // N: every Parameters* attribute gives it, and they must agree.
  let first: { attribute: JdlAttribute; count: number } | undefined;
  for (const attribute of ad.attributes) {
    if (CONTROL_NAME.exec(attribute.name)?.[1] !== 'Parameters') continue;
    const count = sequenceLength(attribute, problems);
    if (count === null) continue;
    if (!first) first = { attribute, count };
    else if (count !== first.count) {
      problems.push(
        at(
          attribute,
          `Different length of parameter vectors: ${first.attribute.name} has ${first.count} values, ${attribute.name} has ${count}`,
          false,
        ),
      );
    }
  }
  if (problems.length > 0 || !first) throw jdlError('WMS_JDL_PARAMETRIC', problems);
  if (first.count > maxJobs) {
    throw jdlError('WMS_JDL_PARAMETRIC', [
      at(first.attribute, `${first.attribute.name} would make ${first.count} jobs, more than the limit of ${maxJobs} jobs per submission`),
    ]);
  }

  // The unnamed sequence first (its Parameter attribute too), then the named ones in order.
  const ordered = [...groups.values()].sort((a, b) => Number(b.key === '') - Number(a.key === ''));
  const sequences: Sequence[] = [];
  for (const group of ordered) {
    const list = group.parameters?.value;
    const values = Array.isArray(list) ? listValues(list, group.parameters as JdlAttribute) : numericSequence(group, first.count, problems);
    if (values) sequences.push({ key: group.key, origin: group.origin, values });
  }
  if (problems.length > 0) throw jdlError('WMS_JDL_PARAMETRIC', problems);
  return sequences;
}

/** How many values a `Parameters*` attribute gives, or null (with a problem) when malformed. */
function sequenceLength(attribute: JdlAttribute, problems: JdlProblem[]): number | null {
  const { name, value } = attribute;
  if (Array.isArray(value)) {
    if (value.length === 0) {
      problems.push(at(attribute, `${name} is an empty list: give at least one value`));
      return null;
    }
    const scalar = (v: JdlValue) => typeof v !== 'object';
    if (!value.every((v) => scalar(v) || (Array.isArray(v) && v.every(scalar)))) {
      problems.push(at(attribute, `${name} may list only texts, numbers, booleans and lists of them`));
      return null;
    }
    return value.length;
  }
  const written = writtenNumber(attribute);
  if (written !== undefined) {
    const count = Number(written.text);
    if (Number.isInteger(count) && count > 0) return count;
    problems.push(
      at(attribute, `${name} = ${shorten(written.text)} is not allowed: the number of jobs must be a whole number greater than 0`),
    );
    return null;
  }
  problems.push(at(attribute, `${name} must be a list of values, e.g. { "a", "b" }, or a number of jobs`));
  return null;
}

/** The values of a list sequence, each with its spelling as written. */
function listValues(list: JdlValue[], attribute: JdlAttribute): Spelled[] {
  const spelling = spellingOf(attribute);
  return list.map((value, i) => ({
    value,
    spelling: (Array.isArray(spelling) ? spelling[i] : undefined) ?? spellingFor(value),
  }));
}

/**
 * start, start*factor+step, ... for a sequence of `count` values, with Python's types: exact
 * integers when start, step and factor are written as integers, else floats.
 */
function numericSequence(group: SequenceAttributes, count: number, problems: JdlProblem[]): Spelled[] | null {
  const read = (attribute: JdlAttribute | undefined, fallback: string) => {
    if (!attribute) return { text: fallback, float: false };
    const written = writtenNumber(attribute);
    if (written === undefined) {
      const shown = shorten(attribute.source ?? String(attribute.value));
      problems.push(at(attribute, `${attribute.name} must be a number, not ${shown}`));
      return null;
    }
    if (!Number.isFinite(Number(written.text))) {
      problems.push(at(attribute, `${attribute.name} = ${shorten(written.text)} is too large`));
      return null;
    }
    return written;
  };
  const start = read(group.start, '1');
  const step = read(group.step, '0');
  const factor = read(group.factor, '1');
  if (!start || !step || !factor) return null;

  const values: Spelled[] = [];
  if (!start.float && !step.float && !factor.float) {
    const [s, d, f] = [BigInt(start.text), BigInt(step.text), BigInt(factor.text)];
    let v = s;
    for (let i = 0; i < count; i += 1) {
      if (i > 0) v = v * f + d;
      if (v > LARGEST || -v > LARGEST) return overflow(group, problems);
      values.push({ value: Number(v), spelling: v.toString() });
    }
    return values;
  }
  const [s, d, f] = [Number(start.text), Number(step.text), Number(factor.text)];
  let v = s;
  for (let i = 0; i < count; i += 1) {
    if (i > 0) v = v * f + d;
    if (!Number.isFinite(v)) return overflow(group, problems);
    values.push({ value: v, spelling: pythonFloatRepr(v) });
  }
  return values;
}

function overflow(group: SequenceAttributes, problems: JdlProblem[]): null {
  const name = group.parameters?.name ?? (group.key === '' ? 'Parameters' : `sequence ${group.key}`);
  problems.push(at(group.origin, `the values of ${name} grow beyond the largest number`));
  return null;
}

/**
 * The number an attribute spells, read as DIRAC reads it: its text as written with every `"`
 * removed must be what Python's `int()` or `float()` accepts. `text` is that number without
 * blanks and `_`; `float` tells whether Python would read a float (a `.` or an exponent).
 */
function writtenNumber(attribute: JdlAttribute): { text: string; float: boolean } | undefined {
  const { value } = attribute;
  const written = attribute.source ?? (typeof value === 'string' || typeof value === 'number' ? String(value) : undefined);
  const bare = written?.replace(/"/g, '');
  if (bare === undefined || !PYTHON_FLOAT.test(bare)) return undefined;
  return { text: bare.replace(/[\s_]/g, ''), float: !PYTHON_INT.test(bare) };
}

/** True when some string in the value holds a `%` (only those attributes vary between jobs). */
function mentionsPercent(value: JdlValue): boolean {
  if (typeof value === 'string') return value.includes('%');
  if (Array.isArray(value)) return value.some(mentionsPercent);
  if (typeof value === 'object') return value.attributes.some((a) => mentionsPercent(a.value));
  return false;
}

function substituteAttribute(attribute: JdlAttribute, job: Job): JdlAttribute {
  if (!job.spellings.has(attribute)) job.spellings.set(attribute, spellingOf(attribute));
  const spelling = job.spellings.get(attribute) ?? spellingFor(attribute.value);
  const result = substitute({ value: attribute.value, spelling }, attribute, job, false);
  if (Array.isArray(result)) throw new Error('unreachable: a whole value is never spliced');
  if (result.value === attribute.value) return attribute;
  return madeAt(attribute.name, result.value, attribute, render(result.spelling));
}

/**
 * One value with its placeholders substituted. A list element (`inList`) that is a bare
 * placeholder of a list value gives that list's elements, to splice.
 */
function substitute(item: Spelled, owner: JdlAttribute, job: Job, inList: boolean): Spelled | Spelled[] {
  const { value, spelling } = item;
  if (typeof value === 'string') {
    if (!value.includes('%')) return item;
    const quoted = typeof spelling !== 'string' || spelling.startsWith('"');
    if (!quoted) {
      const whole = WHOLE.exec(value);
      const parameter = whole ? job.values.get(whole[1] ?? '') : undefined;
      if (parameter && Array.isArray(parameter.value)) {
        return inList ? elementsOf(parameter) : parameter;
      }
    }
    const text = substituteText(value, owner, job);
    if (quoted) return { value: text, spelling: quoteString(text) };
    const read = bareWordValue(text);
    const written = typeof read !== 'string' || isBareString(text) ? text : quoteString(text);
    return { value: read, spelling: written };
  }
  if (Array.isArray(value)) {
    const spellings = Array.isArray(spelling) ? spelling : [];
    const items: JdlValue[] = [];
    const written: JdlSpelling[] = [];
    value.forEach((v, i) => {
      const result = substitute({ value: v, spelling: spellings[i] ?? spellingFor(v) }, owner, job, true);
      const results = Array.isArray(result) ? result : [result];
      job.budget.left -= results.length * ELEMENT_SIZE;
      if (job.budget.left < 0) throw tooLarge(job.budget);
      for (const r of results) {
        items.push(r.value);
        written.push(r.spelling);
      }
    });
    return { value: items, spelling: written };
  }
  if (typeof value === 'object') {
    const ad: JdlAd = {
      attributes: value.attributes.map((a) => (mentionsPercent(a.value) ? substituteAttribute(a, job) : a)),
    };
    return { value: ad, spelling: serializeJdl(ad) };
  }
  return item;
}

/** `%s`, `%(x)s` and `%n` replaced in a text; everything else kept as written. */
function substituteText(text: string, owner: JdlAttribute, job: Job): string {
  let out = '';
  let i = 0;
  while (i < text.length) {
    const percent = text.indexOf('%', i);
    if (percent < 0) {
      out += text.slice(i);
      break;
    }
    out += text.slice(i, percent);
    const next = text[percent + 1];
    i = percent + 2;
    if (next === '%') {
      out += '%%';
    } else if (next === 'n') {
      out += job.index;
    } else if (next === 's') {
      out += job.texts.get('') ?? '%s';
    } else {
      NAMED.lastIndex = percent;
      const named = next === '(' ? NAMED.exec(text) : null;
      if (named) {
        const key = named[1] as string;
        const replacement = job.texts.get(key);
        if (replacement === undefined) throw unknownSequence(named[0], key, owner, job);
        out += replacement;
        i = percent + named[0].length;
      } else {
        out += '%';
        i = percent + 1;
      }
    }
    if (out.length > job.budget.left) throw tooLarge(job.budget);
  }
  job.budget.left -= out.length;
  return out;
}

function tooLarge(budget: Budget) {
  return jdlError('WMS_JDL_PARAMETRIC', [
    at(
      budget.origin,
      `the jobs of this parametric JDL would hold more than ${MAX_EXPANDED_SIZE / 1024 / 1024} MB of substituted text: use fewer jobs, or shorter values`,
    ),
  ]);
}

/** The first `Parameters` or `Parameters.<x>` attribute (there is one in a parametric ad). */
function firstCount(ad: JdlAd): JdlAttribute {
  return ad.attributes.find((a) => a.name.startsWith('Parameters')) as JdlAttribute;
}

function unknownSequence(placeholder: string, key: string, owner: JdlAttribute, job: Job) {
  const known = [...job.values.keys()].map((k) => (k === '' ? '%s' : `%(${k})s`));
  return jdlError('WMS_JDL_PARAMETRIC', [
    at(
      owner,
      `unknown placeholder ${placeholder} in ${owner.name}: no sequence is named ${key} (the sequences here: ${known.join(', ')}; %n is the job's index)`,
    ),
  ]);
}

/**
 * The text a value stands for inside a string: a string itself, a number as written, a list as
 * `{a,b}` (what DIRAC's getAttributeString gives for it).
 */
function textOf(item: Spelled): string {
  const { value, spelling } = item;
  if (typeof value === 'string') return value;
  if (Array.isArray(value)) return `{${elementsOf(item).map(textOf).join(',')}}`;
  if (typeof spelling === 'string' && typeof value !== 'object') return spelling;
  return typeof value === 'object' ? serializeJdl(value) : String(value);
}

function elementsOf(item: Spelled): Spelled[] {
  const values = item.value as JdlValue[];
  const spellings = Array.isArray(item.spelling) ? item.spelling : [];
  return values.map((value, i) => ({ value, spelling: spellings[i] ?? spellingFor(value) }));
}

/** A spelling for a value made in code (no text it was read from). */
function spellingFor(value: JdlValue): JdlSpelling {
  if (typeof value === 'string') return quoteString(value);
  if (Array.isArray(value)) return value.map(spellingFor);
  if (typeof value === 'object') return serializeJdl(value);
  return String(value);
}

/** A spelling as JDL text (a list's elements as they were written). */
function render(spelling: JdlSpelling): string {
  if (!Array.isArray(spelling)) return spelling;
  return spelling.length === 0 ? '{}' : `{ ${spelling.map(render).join(', ')} }`;
}

/** An attribute made here, at the position of `at` (0 when absent), written as `source`. */
function madeAt(name: string, value: JdlValue, at: JdlAttribute | undefined, source: string): JdlAttribute {
  return { ...makeAttribute(name, value, at), source };
}

/** A problem at the attribute's value (`atValue`), or at its name. */
function at(attribute: JdlAttribute, message: string, atValue = true): JdlProblem {
  return {
    message,
    line: atValue ? attribute.valueLine : attribute.line,
    column: atValue ? attribute.valueColumn : attribute.column,
    attribute: attribute.name,
  };
}
