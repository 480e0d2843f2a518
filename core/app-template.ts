/**
 * Application templates: what a scientist who does not write JDL fills in. A template (stored by
 * the services, loaded from `apps/*.yaml`, managed by admins) declares typed parameters,
 * resources and a JDL text with `{{name}}` placeholders; the dashboard generates a form from it.
 *
 * ```yaml
 * name: hello                      # [a-z0-9][a-z0-9_-]*, also the file name
 * title: Hello world
 * parameters:
 *   - { name: who, label: Who to greet, type: string, pattern: "^[A-Za-z ]+$", maxLength: 40, default: world }
 * resources: { cpuTime: 600 }
 * jdl: |
 *   [ Executable = "/bin/echo"; Arguments = "Hello {{who}}"; ]
 * ```
 *
 * Pure (no I/O): the services and the browser run the same checks. Rendering never pastes a
 * value into the JDL as text: a placeholder inside a JDL string literal gets the value escaped
 * for that string (`\` and `"`), one outside gets a JDL literal (a number, or a quoted and escaped
 * string); values with control characters (a newline would end a JDL string) are refused. The
 * rendered text is then parsed with `parseJdl`, the resources added as attributes when the
 * template does not set them, and the ad written back with `serializeJdl`.
 */
import { WmsError, isWmsError, type JdlProblem } from './errors.js';
import { getAttribute, makeAttribute, parseJdl, serializeJdl, type JdlValue } from './jdl/parser.js';
import { describeJobs } from './jdl/describe.js';
import { DEFAULT_JOB_LIMITS } from './job-model.js';

export const PARAMETER_TYPES = ['number', 'string', 'choice', 'file'] as const;
export type ParameterType = (typeof PARAMETER_TYPES)[number];

interface ParameterBase {
  /** Placeholder name: `{{name}}` in the JDL. */
  name: string;
  label: string;
  help?: string;
  /** Default true: a value (or a default) must be there. */
  required?: boolean;
}
export interface NumberParameter extends ParameterBase {
  type: 'number';
  min?: number;
  max?: number;
  step?: number;
  integer?: boolean;
  default?: number;
}
export interface StringParameter extends ParameterBase {
  type: 'string';
  /** A JavaScript regular expression the whole value must match (anchor it). */
  pattern?: string;
  maxLength?: number;
  default?: string;
}
export interface ChoiceParameter extends ParameterBase {
  type: 'choice';
  options: string[];
  default?: string;
}
/** An input sandbox file: the value is `SB:<sha256>` of an uploaded sandbox. */
export interface FileParameter extends ParameterBase {
  type: 'file';
}
export type AppParameter = NumberParameter | StringParameter | ChoiceParameter | FileParameter;

export interface AppResources {
  /** CPUTime in normalized seconds. */
  cpuTime?: number;
  processors?: number;
  /** MaxRAM in MB (at least 256, which is how the JDL reads it as MB). */
  ramMb?: number;
  tags?: string[];
}

export interface AppTemplate {
  name: string;
  title: string;
  description?: string;
  parameters: AppParameter[];
  resources?: AppResources;
  jdl: string;
}

/** Values as a form or a client sends them: numbers may come as numeric strings. */
export type AppValues = Record<string, string | number | boolean | null | undefined>;

/** One problem of the values, on the parameter it belongs to. */
export interface ValueProblem {
  parameter: string;
  message: string;
}

export const APP_NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const PARAM_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;
const SANDBOX_REF = /^SB:[0-9a-f]{64}$/;
const CONTROL = /[\u0000-\u001f\u007f]/;

const TOP_KEYS = ['name', 'title', 'description', 'parameters', 'resources', 'jdl'];
const BASE_KEYS = ['name', 'label', 'help', 'required', 'type'];
const TYPE_KEYS: Record<ParameterType, string[]> = {
  number: ['min', 'max', 'step', 'integer', 'default'],
  string: ['pattern', 'maxLength', 'default'],
  choice: ['options', 'default'],
  file: [],
};
const RESOURCE_KEYS = ['cpuTime', 'processors', 'ramMb', 'tags'];

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isInt = (v: unknown): v is number => Number.isInteger(v);

function unknownKeys(o: Record<string, unknown>, allowed: string[], at: string): string[] {
  const extra = Object.keys(o).filter((k) => !allowed.includes(k));
  return extra.length ? [`${at}: unknown key(s) ${extra.join(', ')}`] : [];
}

/** The placeholder names a JDL template uses, in order of first use. */
export function placeholdersOf(jdl: string): string[] {
  return [...new Set([...jdl.matchAll(PLACEHOLDER)].map((m) => m[1]!))];
}

/**
 * Every problem of a parsed template document, one line each with its path
 * (`parameters[1].max: ...`); empty when it is a valid template. Checks the shape, names,
 * ranges, patterns, defaults against their own parameter, that every placeholder is a parameter
 * and every parameter is used, and that the JDL rendered with sample values is a valid job.
 */
export function templateProblems(doc: unknown): string[] {
  if (!isObject(doc)) return ['(top): must be an object'];
  const out: string[] = [...unknownKeys(doc, TOP_KEYS, '(top)')];
  if (typeof doc['name'] !== 'string' || !APP_NAME_PATTERN.test(doc['name'])) {
    out.push('name: must match ^[a-z0-9][a-z0-9_-]{0,63}$');
  }
  if (typeof doc['title'] !== 'string' || doc['title'].trim() === '') out.push('title: must be a non-empty string');
  if (doc['description'] !== undefined && typeof doc['description'] !== 'string') out.push('description: must be a string');
  if (typeof doc['jdl'] !== 'string' || doc['jdl'].trim() === '') out.push('jdl: must be a non-empty string');

  const params = doc['parameters'];
  const names = new Set<string>();
  if (!Array.isArray(params)) out.push('parameters: must be a list');
  else {
    params.forEach((p, i) => {
      const at = `parameters[${i}]`;
      if (!isObject(p)) return out.push(`${at}: must be an object`);
      const type = p['type'] as ParameterType;
      if (!PARAMETER_TYPES.includes(type)) {
        out.push(`${at}.type: must be one of ${PARAMETER_TYPES.join(', ')}`);
        return;
      }
      out.push(...unknownKeys(p, [...BASE_KEYS, ...TYPE_KEYS[type]], at));
      const name = p['name'];
      if (typeof name !== 'string' || !PARAM_NAME_PATTERN.test(name)) out.push(`${at}.name: must match ^[A-Za-z_][A-Za-z0-9_]*$`);
      else if (names.has(name)) out.push(`${at}.name: "${name}" is declared twice`);
      else names.add(name);
      if (typeof p['label'] !== 'string' || p['label'].trim() === '') out.push(`${at}.label: must be a non-empty string`);
      if (p['help'] !== undefined && typeof p['help'] !== 'string') out.push(`${at}.help: must be a string`);
      if (p['required'] !== undefined && typeof p['required'] !== 'boolean') out.push(`${at}.required: must be true or false`);
      const before = out.length;
      if (type === 'number') {
        for (const k of ['min', 'max', 'step'] as const) {
          if (p[k] !== undefined && !isNumber(p[k])) out.push(`${at}.${k}: must be a number`);
        }
        if (p['integer'] !== undefined && typeof p['integer'] !== 'boolean') out.push(`${at}.integer: must be true or false`);
        if (isNumber(p['min']) && isNumber(p['max']) && p['min'] > p['max']) out.push(`${at}.max: must not be below min (${p['min']})`);
        if (isNumber(p['step']) && p['step'] <= 0) out.push(`${at}.step: must be above 0`);
        if (p['default'] !== undefined && !isNumber(p['default'])) out.push(`${at}.default: must be a number`);
        if (p['required'] === false && p['default'] === undefined) out.push(`${at}.default: an optional number needs a default`);
      } else if (type === 'string') {
        if (p['pattern'] !== undefined) {
          if (typeof p['pattern'] !== 'string') out.push(`${at}.pattern: must be a string`);
          else {
            try {
              new RegExp(p['pattern'], 'u');
            } catch (e) {
              out.push(`${at}.pattern: not a valid regular expression (${(e as Error).message})`);
            }
          }
        }
        if (p['maxLength'] !== undefined && (!isInt(p['maxLength']) || p['maxLength'] < 1))
          out.push(`${at}.maxLength: must be a whole number of at least 1`);
        if (p['default'] !== undefined && typeof p['default'] !== 'string') out.push(`${at}.default: must be a string`);
      } else if (type === 'choice') {
        const o = p['options'];
        if (!Array.isArray(o) || o.length === 0 || !o.every((x) => typeof x === 'string' && x !== '')) {
          out.push(`${at}.options: must be a non-empty list of non-empty strings`);
        } else if (new Set(o).size !== o.length) out.push(`${at}.options: must not repeat an option`);
        if (p['default'] !== undefined && typeof p['default'] !== 'string') out.push(`${at}.default: must be a string`);
      }
      // The default must pass the parameter's own checks.
      if (out.length === before && p['default'] !== undefined && typeof name === 'string') {
        for (const problem of valueProblems(p as unknown as AppParameter, p['default'] as string | number)) {
          out.push(`${at}.default: ${problem}`);
        }
      }
    });
  }

  const res = doc['resources'];
  if (res !== undefined) {
    if (!isObject(res)) out.push('resources: must be an object');
    else {
      out.push(...unknownKeys(res, RESOURCE_KEYS, 'resources'));
      if (res['cpuTime'] !== undefined && (!isInt(res['cpuTime']) || res['cpuTime'] < 1))
        out.push('resources.cpuTime: must be a whole number of at least 1');
      if (res['processors'] !== undefined && (!isInt(res['processors']) || res['processors'] < 1 || res['processors'] > 1024)) {
        out.push('resources.processors: must be a whole number from 1 to 1024');
      }
      if (res['ramMb'] !== undefined && (!isInt(res['ramMb']) || res['ramMb'] < 256))
        out.push('resources.ramMb: must be a whole number of at least 256');
      const tags = res['tags'];
      if (tags !== undefined && (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string' && /^[A-Za-z0-9._:-]+$/.test(t)))) {
        out.push('resources.tags: must be a list of names ([A-Za-z0-9._:-]+)');
      }
    }
  }

  if (typeof doc['jdl'] === 'string' && Array.isArray(params)) {
    const used = placeholdersOf(doc['jdl']);
    for (const u of used) if (!names.has(u)) out.push(`jdl: {{${u}}} is not a parameter`);
    params.forEach((p, i) => {
      if (isObject(p) && typeof p['name'] === 'string' && !used.includes(p['name'])) {
        out.push(`parameters[${i}]: "${p['name']}" is not used in jdl`);
      }
    });
    if (out.length === 0) {
      // Rendered with sample values, the JDL must describe valid jobs.
      const t = doc as unknown as AppTemplate;
      try {
        const text = renderJdl(t, sampleValues(t));
        describeJobs(text, { owner: 'preview', ownerGroup: 'preview', vo: 'preview' }, DEFAULT_JOB_LIMITS);
      } catch (e) {
        if (!isWmsError(e)) throw e;
        const problems = (e.details as { problems?: JdlProblem[] } | undefined)?.problems ?? [];
        if (problems.length === 0) out.push(`jdl: ${e.message}`);
        for (const pr of problems) out.push(`jdl: line ${pr.line}, column ${pr.column}: ${pr.message}`);
      }
    }
  }
  return out;
}

/** Values to try a template with: defaults, else the lowest allowed, the first option, a dummy sandbox. */
export function sampleValues(t: AppTemplate): AppValues {
  const v: AppValues = {};
  for (const p of t.parameters) {
    if (p.type === 'file') v[p.name] = `SB:${'0'.repeat(64)}`;
    else if (p.default !== undefined) v[p.name] = p.default;
    else if (p.type === 'number') v[p.name] = p.min ?? 0;
    else if (p.type === 'choice') v[p.name] = p.options[0];
    else v[p.name] = 'x';
  }
  return v;
}

/** The problems of one present value (messages without the parameter's name). */
function valueProblems(p: AppParameter, raw: string | number | boolean): string[] {
  switch (p.type) {
    case 'number': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
      if (!Number.isFinite(n)) return ['must be a number'];
      const out: string[] = [];
      if (p.integer && !Number.isInteger(n)) out.push('must be a whole number');
      if (p.min !== undefined && n < p.min) out.push(`must be at least ${p.min}`);
      if (p.max !== undefined && n > p.max) out.push(`must be at most ${p.max}`);
      if (p.step !== undefined && out.length === 0) {
        const k = (n - (p.min ?? 0)) / p.step;
        if (Math.abs(k - Math.round(k)) > 1e-9) out.push(`must be ${p.min ?? 0} plus a multiple of ${p.step}`);
      }
      return out;
    }
    case 'string': {
      if (typeof raw !== 'string') return ['must be text'];
      if (CONTROL.test(raw)) return ['must not contain line breaks or control characters'];
      const out: string[] = [];
      if (p.maxLength !== undefined && raw.length > p.maxLength) out.push(`must be at most ${p.maxLength} characters`);
      if (p.pattern !== undefined && !new RegExp(p.pattern, 'u').test(raw)) out.push(`must match ${p.pattern}`);
      return out;
    }
    case 'choice':
      return typeof raw === 'string' && p.options.includes(raw) ? [] : [`must be one of ${p.options.join(', ')}`];
    case 'file':
      return typeof raw === 'string' && SANDBOX_REF.test(raw) ? [] : ['must be an uploaded file (SB:<sha256>)'];
  }
}

const isMissing = (v: unknown): v is null | undefined | '' => v === undefined || v === null || v === '';

/**
 * Every problem of the values for a template, per parameter (several per parameter possible),
 * with messages a form can show beside the field. Values of unknown parameters are problems too.
 */
export function validateValues(t: AppTemplate, values: AppValues): ValueProblem[] {
  const out: ValueProblem[] = [];
  for (const p of t.parameters) {
    const raw = values[p.name];
    if (isMissing(raw)) {
      if (p.required !== false && (p.type === 'file' || p.default === undefined)) {
        out.push({ parameter: p.name, message: `${p.label} is required` });
      }
      continue;
    }
    for (const m of valueProblems(p, raw)) out.push({ parameter: p.name, message: `${p.label} ${m}` });
  }
  const known = new Set(t.parameters.map((p) => p.name));
  for (const k of Object.keys(values)) {
    if (!known.has(k)) out.push({ parameter: k, message: `${k} is not a parameter of ${t.name}` });
  }
  return out;
}

/** The value each parameter renders with (given, else default), coerced to its type. */
function resolvedValues(t: AppTemplate, values: AppValues): Map<string, string | number> {
  const out = new Map<string, string | number>();
  for (const p of t.parameters) {
    const raw = values[p.name];
    const v = isMissing(raw) ? (p.type === 'file' ? undefined : p.default) : raw;
    if (p.type === 'number') out.set(p.name, v === undefined ? 0 : Number(v));
    else out.set(p.name, v === undefined ? '' : String(v));
  }
  return out;
}

const escapeJdlString = (s: string) => s.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
const jdlNumber = (n: number) => (Number.isInteger(n) ? String(n) : String(n));

/**
 * The JDL a template and values make: validates first (throws WmsError WMS_VALIDATION with
 * `details.problems` `[{ message, path: <parameter> }]`), substitutes the placeholders safely,
 * parses the result (a broken template throws the parser's located WMS_JDL_SYNTAX), adds the
 * resources the template does not set and writes the ad back as JDL text.
 */
export function renderJdl(t: AppTemplate, values: AppValues): string {
  const problems = validateValues(t, values);
  if (problems.length > 0) {
    throw new WmsError('WMS_VALIDATION', `${t.name}: ${problems.map((p) => p.message).join('; ')}`, {
      details: { problems: problems.map((p) => ({ message: p.message, path: p.parameter })) },
    });
  }
  const resolved = resolvedValues(t, values);
  // One pass over the template, tracking whether we are inside a JDL string literal.
  let text = '';
  let inString = false;
  const src = t.jdl;
  for (let i = 0; i < src.length;) {
    const c = src[i]!;
    if (c === '{' && src[i + 1] === '{') {
      const at = new RegExp(PLACEHOLDER.source, 'y');
      at.lastIndex = i;
      const m = at.exec(src);
      if (m) {
        const v = resolved.get(m[1]!);
        if (v === undefined) throw new WmsError('WMS_VALIDATION', `jdl: {{${m[1]}}} is not a parameter of ${t.name}`);
        if (inString) text += escapeJdlString(String(v));
        else text += typeof v === 'number' ? jdlNumber(v) : `"${escapeJdlString(v)}"`;
        i += m[0].length;
        continue;
      }
    }
    if (!inString && (c === '#' || (c === '/' && src[i + 1] === '/')) && /^[ \t]*$/.test(text.slice(text.lastIndexOf('\n') + 1))) {
      // A whole-line comment: copied as it is (a quote in it opens no string).
      const end = src.indexOf('\n', i);
      text += end < 0 ? src.slice(i) : src.slice(i, end);
      i = end < 0 ? src.length : end;
      continue;
    }
    if (inString && c === '\\') {
      text += src.slice(i, i + 2);
      i += 2;
      continue;
    }
    if (c === '"') inString = !inString;
    text += c;
    i += 1;
  }
  const ad = parseJdl(text);
  const res = t.resources ?? {};
  const add = (name: string, value: JdlValue | undefined) => {
    if (value !== undefined && !getAttribute(ad, name)) ad.attributes.push(makeAttribute(name, value));
  };
  add('CPUTime', res.cpuTime);
  add('NumberOfProcessors', res.processors);
  add('MaxRAM', res.ramMb);
  if (res.tags && res.tags.length > 0) add('Tags', res.tags);
  return `${serializeJdl(ad)}\n`;
}

/** Problems keyed by parameter, for a form: `{ start: ['Start must be at least 0'] }`. */
export function problemsByParameter(problems: ValueProblem[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const p of problems) (out[p.parameter] ??= []).push(p.message);
  return out;
}
