/**
 * Parametric (bulk) jobs: one JDL that stands for many jobs, one per parameter value.
 *
 * A JDL is parametric when it has an attribute `Parameters` or `Parameters.<name>`:
 *
 * - `Parameters = { "a", "b", "c" };` lists the values (texts or numbers);
 * - `Parameters = 5;` makes a numeric sequence of 5 values: the first is `ParameterStart`
 *   (default 1), each next one is the previous times `ParameterFactor` (default 1) plus
 *   `ParameterStep` (default 0);
 * - `Parameters.x = ...;` with `ParameterStart.x`, `ParameterStep.x`, `ParameterFactor.x` is a
 *   named sequence; all sequences must have the same length.
 *
 * In every string of the JDL (inside lists and nested ads too) `%s` becomes the value of the
 * unnamed sequence, `%(x)s` the value of sequence `x`, `%n` the job's index zero-padded to the
 * width of the last index, `%%` a single `%`; `%j` is left for the database, which puts the job
 * ID there. Any other `%` followed by a letter or `(` is an error; a `%` followed by anything
 * else (`50% done`) is kept as written. A JDL that is not parametric may use only `%j` and `%%`.
 */

import { jdlError, type JdlProblem } from '../errors.js';
import { makeAttribute, type JdlAd, type JdlAttribute, type JdlValue } from './parser.js';

/** One job of a parametric JDL. */
export interface ExpandedJob {
  /** The job's ad: placeholders substituted, `Parameter*` attributes set. */
  ad: JdlAd;
  /** The index, from 0 (also the `ParameterNumber` attribute). */
  number: number;
  /** The values substituted, by attribute name: `Parameter` and `Parameter.<name>`. */
  values: Record<string, string | number>;
}

/** A sequence: `key` is '' for `Parameters`, `x` for `Parameters.x`. */
interface Sequence {
  key: string;
  attribute: JdlAttribute;
  count: number;
  values: (string | number)[];
}

interface PlaceholderContext {
  /** Null when the JDL is not parametric. */
  index: string | null;
  /** Values by sequence key ('' for the unnamed one), rendered as text. */
  values: Map<string, string>;
}

const SEQUENCE_NAME = /^Parameters(?:\.(.+))?$/;
const CONTROL_NAME = /^(?:Parameters|ParameterStart|ParameterStep|ParameterFactor)(?:\..+)?$/;
const OUTPUT_NAME = /^(?:Parameter|ParameterNumber)(?:\..+)?$/;
/** `%(name)s`, matched where the `%` is. */
const NAMED = /%\(([A-Za-z0-9_.]+)\)s/y;

/** True when the ad has an attribute whose name starts with `Parameters`. */
export function isParametric(ad: JdlAd): boolean {
  return ad.attributes.some((a) => a.name.startsWith('Parameters'));
}

/**
 * Expands a parametric JDL into its jobs; returns null when the ad is not parametric.
 * Throws `WmsError` `WMS_JDL_PARAMETRIC` (with line and column) when a sequence is malformed,
 * when sequences differ in length, when there would be more than `limits.maxParametricJobs`
 * jobs, or on an unknown placeholder.
 */
export function expandParametric(
  ad: JdlAd,
  limits: { maxParametricJobs: number },
): ExpandedJob[] | null {
  if (!isParametric(ad)) return null;
  const sequences = readSequences(ad, limits.maxParametricJobs);
  const count = sequences[0]?.count ?? 0;
  const width = String(count - 1).length;
  const kept = ad.attributes.filter((a) => !CONTROL_NAME.test(a.name) && !OUTPUT_NAME.test(a.name));
  const origin = sequences[0]?.attribute;

  const jobs: ExpandedJob[] = [];
  for (let i = 0; i < count; i += 1) {
    const values: Record<string, string | number> = {};
    const context: PlaceholderContext = {
      index: String(i).padStart(width, '0'),
      values: new Map(),
    };
    const added: JdlAttribute[] = [];
    for (const s of sequences) {
      const value = s.values[i] as string | number;
      const name = s.key === '' ? 'Parameter' : `Parameter.${s.key}`;
      values[name] = value;
      context.values.set(s.key, String(value));
      added.push(makeAttribute(name, value, s.attribute));
    }
    added.push(makeAttribute('ParameterNumber', i, origin));
    const attributes = kept.map((a) => substituteAttribute(a, context)).concat(added);
    jobs.push({ ad: { attributes }, number: i, values });
  }
  return jobs;
}

/**
 * For a JDL that is not parametric: turns `%%` into `%`, keeps `%j`, and throws
 * `WMS_JDL_PARAMETRIC` on any other placeholder (`%s`, `%n`, `%(x)s`, ...).
 */
export function resolvePlaceholders(ad: JdlAd): JdlAd {
  const context: PlaceholderContext = { index: null, values: new Map() };
  return { attributes: ad.attributes.map((a) => substituteAttribute(a, context)) };
}

/** Reads and checks every `Parameters*` attribute; all problems are thrown together. */
function readSequences(ad: JdlAd, maxJobs: number): Sequence[] {
  const problems: JdlProblem[] = [];
  const sequences: Sequence[] = [];
  for (const attribute of ad.attributes) {
    if (!attribute.name.startsWith('Parameters')) continue;
    const key =
      SEQUENCE_NAME.exec(attribute.name)?.[1] ?? (attribute.name === 'Parameters' ? '' : null);
    if (key === null) {
      problems.push(
        at(
          attribute,
          `${attribute.name} is not a parametric attribute: write Parameters or Parameters.<name>`,
        ),
      );
      continue;
    }
    const count = sequenceLength(attribute, problems);
    if (count !== null) sequences.push({ key, attribute, count, values: [] });
  }
  if (problems.length > 0) throw jdlError('WMS_JDL_PARAMETRIC', problems);

  const first = sequences[0] as Sequence;
  for (const s of sequences.slice(1)) {
    if (s.count !== first.count) {
      problems.push(
        at(
          s.attribute,
          `Different length of parameter vectors: ${first.attribute.name} has ${first.count} values, ${s.attribute.name} has ${s.count}`,
          false,
        ),
      );
    }
  }
  if (problems.length > 0) throw jdlError('WMS_JDL_PARAMETRIC', problems);

  if (first.count > maxJobs) {
    throw jdlError('WMS_JDL_PARAMETRIC', [
      at(
        first.attribute,
        `${first.attribute.name} would make ${first.count} jobs, more than the limit of ${maxJobs} jobs per submission`,
      ),
    ]);
  }

  for (const s of sequences) {
    s.values = Array.isArray(s.attribute.value)
      ? (s.attribute.value as (string | number)[])
      : numericSequence(ad, s, problems);
  }
  if (problems.length > 0) throw jdlError('WMS_JDL_PARAMETRIC', problems);
  return sequences;
}

/** How many values the sequence has, or null (with a problem) when it is malformed. */
function sequenceLength(attribute: JdlAttribute, problems: JdlProblem[]): number | null {
  const { name, value } = attribute;
  if (Array.isArray(value)) {
    if (value.length === 0) {
      problems.push(at(attribute, `${name} is an empty list: give at least one value`));
      return null;
    }
    if (!value.every((v) => typeof v === 'string' || typeof v === 'number')) {
      problems.push(at(attribute, `${name} may list only texts and numbers`));
      return null;
    }
    return value.length;
  }
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value > 0) return value;
    problems.push(
      at(
        attribute,
        `${name} = ${value} is not allowed: the number of jobs must be a whole number greater than 0`,
      ),
    );
    return null;
  }
  problems.push(
    at(attribute, `${name} must be a list of values, e.g. { "a", "b" }, or a number of jobs`),
  );
  return null;
}

/** start, start*factor+step, ... for a sequence given as a number of jobs. */
function numericSequence(ad: JdlAd, s: Sequence, problems: JdlProblem[]): number[] {
  const suffix = s.key === '' ? '' : `.${s.key}`;
  const read = (name: string, fallback: number): number => {
    const attribute = ad.attributes.find((a) => a.name === `${name}${suffix}`);
    if (!attribute) return fallback;
    if (typeof attribute.value === 'number') return attribute.value;
    problems.push(at(attribute, `${attribute.name} must be a number`));
    return fallback;
  };
  const start = read('ParameterStart', 1);
  const step = read('ParameterStep', 0);
  const factor = read('ParameterFactor', 1);
  // With fractional inputs, round each value to 15 significant digits so that 1 + 0.1 + 0.1
  // reads 1.2 in file names rather than 1.2000000000000002.
  const tidy = [start, step, factor].every(Number.isInteger)
    ? (v: number) => v
    : (v: number) => Number(v.toPrecision(15));
  const values: number[] = [tidy(start)];
  for (let i = 1; i < s.count; i += 1) {
    values.push(tidy((values[i - 1] as number) * factor + step));
  }
  if (!values.every(Number.isFinite)) {
    problems.push(
      at(s.attribute, `the values of ${s.attribute.name} grow beyond the largest number`),
    );
  }
  return values;
}

function substituteAttribute(attribute: JdlAttribute, context: PlaceholderContext): JdlAttribute {
  const value = substituteValue(attribute.value, attribute, context);
  return value === attribute.value ? attribute : { ...attribute, value };
}

function substituteValue(
  value: JdlValue,
  owner: JdlAttribute,
  context: PlaceholderContext,
): JdlValue {
  if (typeof value === 'string') return substituteText(value, owner, context);
  if (Array.isArray(value)) return value.map((v) => substituteValue(v, owner, context));
  if (typeof value === 'object') {
    return { attributes: value.attributes.map((a) => substituteAttribute(a, context)) };
  }
  return value;
}

function substituteText(text: string, owner: JdlAttribute, context: PlaceholderContext): string {
  if (!text.includes('%')) return text;
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
    let replacement: string | undefined;
    let length = 2;
    if (next === '%') {
      replacement = '%';
    } else if (next === 'j') {
      replacement = '%j';
    } else if (next === 'n') {
      replacement = context.index ?? undefined;
    } else if (next === 's') {
      replacement = context.values.get('');
    } else if (next === '(') {
      NAMED.lastIndex = percent;
      const named = NAMED.exec(text);
      if (named) {
        length = named[0].length;
        replacement = context.values.get(named[1] as string);
      } else {
        length = (/%\([^\s%]*/y.exec(text.slice(percent))?.[0] ?? '%(').length;
      }
    } else if (next === undefined || !/[A-Za-z]/.test(next)) {
      replacement = '%'; // not a placeholder: a literal percent sign
      length = 1;
    }
    if (replacement === undefined) {
      throw unknownPlaceholder(text.slice(percent, percent + length), owner, context);
    }
    out += replacement;
    i = percent + length;
  }
  return out;
}

function unknownPlaceholder(placeholder: string, owner: JdlAttribute, context: PlaceholderContext) {
  let hint: string;
  if (context.index === null) {
    hint = 'this JDL is not parametric, so only %j (the job ID) and %% (a literal %) can be used';
  } else {
    const known = [...context.values.keys()].map((k) => (k === '' ? '%s' : `%(${k})s`));
    hint = `known here: ${[...known, '%n', '%j', '%%'].join(', ')}`;
  }
  return jdlError('WMS_JDL_PARAMETRIC', [
    at(owner, `unknown placeholder ${placeholder} in ${owner.name} (${hint})`),
  ]);
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
