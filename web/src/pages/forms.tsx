/**
 * The Submit page's Forms tab: pick an application template (GET /api/applications), fill the
 * form generated from its parameters, Submit (POST /api/applications/:name/submit) and go to
 * the job. Values are checked on every input by the same code the services run
 * (core/app-template.ts), each problem shown at its field; Submit stays disabled until there
 * are none. A file parameter is packed in the browser into a one-file tar.gz, uploaded as a
 * sandbox (PUT /api/sandboxes/:sha256) and passed as `SB:<sha256>`.
 */
import { useEffect, useMemo, useState } from 'preact/hooks';
import {
  problemsByParameter,
  renderJdl,
  validateValues,
  type AppParameter,
  type AppTemplate,
  type AppValues,
} from '../../../core/app-template.js';
import type { SubmitApplicationAnswer } from '../../../api/index.js';
import { api, ApiError } from '../api.js';
import { navigate } from '../router.js';
import { uploadFiles } from '../sandbox-archive.js';

type Values = Record<string, string>;

function initialValues(t: AppTemplate): Values {
  const v: Values = {};
  for (const p of t.parameters) v[p.name] = p.type !== 'file' && p.default !== undefined ? String(p.default) : '';
  return v;
}

/** The form's strings as values: empty means "not given" (the default applies). */
function valuesOf(v: Values): AppValues {
  const out: AppValues = {};
  for (const [k, x] of Object.entries(v)) if (x !== '') out[k] = x;
  return out;
}

/** A file parameter as a one-file input sandbox (its name made safe), uploaded; answers `SB:<sha256>`. */
async function uploadFile(file: File): Promise<string> {
  const safe = file.name.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 99) || 'input';
  return uploadFiles([new File([file], safe, { type: file.type })]);
}

function Field(props: {
  p: AppParameter;
  value: string;
  problems: string[] | undefined;
  onValue: (v: string) => void;
  onError: (m: string) => void;
}) {
  const { p, value, problems } = props;
  const id = `param-${p.name}`;
  const invalid = problems !== undefined && problems.length > 0;
  const common = { id, name: p.name, 'aria-invalid': invalid, 'aria-describedby': invalid ? `${id}-problems` : undefined };
  let input;
  if (p.type === 'number') {
    input = (
      <input
        {...common}
        type="number"
        value={value}
        {...(p.min !== undefined ? { min: p.min } : {})}
        {...(p.max !== undefined ? { max: p.max } : {})}
        step={p.step ?? (p.integer ? 1 : 'any')}
        onInput={(e) => props.onValue(e.currentTarget.value)}
      />
    );
  } else if (p.type === 'choice') {
    input = (
      <select {...common} value={value} onChange={(e) => props.onValue(e.currentTarget.value)}>
        {p.required === false || p.default === undefined ? <option value="">—</option> : null}
        {p.options.map((o) => (
          <option key={o} value={o}>
            {o}
          </option>
        ))}
      </select>
    );
  } else if (p.type === 'file') {
    input = (
      <>
        <input
          {...common}
          type="file"
          onChange={(e) => {
            const f = e.currentTarget.files?.[0];
            if (!f) return props.onValue('');
            uploadFile(f).then(props.onValue, (err: Error) => props.onError(err.message));
          }}
        />
        {value && <code class="pill">{value.slice(0, 15)}…</code>}
      </>
    );
  } else {
    input = (
      <input
        {...common}
        type="text"
        value={value}
        {...(p.maxLength !== undefined ? { maxLength: p.maxLength + 1 } : {})}
        onInput={(e) => props.onValue(e.currentTarget.value)}
      />
    );
  }
  return (
    <div class="field" data-param={p.name}>
      <label for={id}>{p.label}</label> {input}
      {p.help && <small> {p.help}</small>}
      {invalid && (
        <ul class="problems" id={`${id}-problems`} data-testid={`problems-${p.name}`} role="alert">
          {problems!.map((m, i) => (
            <li key={i}>{m}</li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function FormsTab() {
  const [apps, setApps] = useState<AppTemplate[] | null>(null);
  const [name, setName] = useState('');
  const [values, setValues] = useState<Values>({});
  const [serverProblems, setServerProblems] = useState<Record<string, string[]> | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    // Read as core's AppTemplate (each parameter typed by its kind): core's checks take that.
    api<{ applications: AppTemplate[] }>('GET', '/api/applications').then(
      ({ applications }) => {
        setApps(applications);
        const first = applications[0];
        if (first) {
          setName(first.name);
          setValues(initialValues(first));
        }
      },
      (e: Error) => setError(e.message),
    );
  }, []);

  const template = apps?.find((a) => a.name === name);
  const check = useMemo(() => {
    if (!template) return { problems: {} as Record<string, string[]>, jdl: '' };
    const problems = problemsByParameter(validateValues(template, valuesOf(values)));
    let jdl = '';
    if (Object.keys(problems).length === 0) {
      try {
        jdl = renderJdl(template, valuesOf(values));
      } catch (e) {
        problems['(jdl)'] = [(e as Error).message];
      }
    }
    return { problems, jdl };
  }, [template, values]);
  const problems = serverProblems ?? check.problems;
  const hasProblems = Object.keys(check.problems).length > 0;

  if (apps === null)
    return error ? (
      <p class="error" role="alert">
        {error}
      </p>
    ) : (
      <p>Loading applications…</p>
    );
  if (apps.length === 0) return <p>No applications are defined.</p>;

  const submit = async (e: Event) => {
    e.preventDefault();
    if (!template || hasProblems) return;
    setBusy(true);
    setError(null);
    try {
      const { jobIds } = await api<SubmitApplicationAnswer>('POST', `/api/applications/${template.name}/submit`, {
        values: valuesOf(values),
      });
      navigate(jobIds.length === 1 ? `/jobs/${jobIds[0]}` : '/jobs');
    } catch (err) {
      if (err instanceof ApiError && err.problems.length > 0) {
        const by: Record<string, string[]> = {};
        for (const p of err.problems as { message: string; path?: string }[]) (by[p.path ?? '(jdl)'] ??= []).push(p.message);
        setServerProblems(by);
      }
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form onSubmit={submit} class="app-form" data-testid="app-form" noValidate>
      <p>
        <label for="application">Application</label>{' '}
        <select
          id="application"
          value={name}
          onChange={(e) => {
            const t = apps.find((a) => a.name === e.currentTarget.value);
            setName(e.currentTarget.value);
            if (t) setValues(initialValues(t));
            setServerProblems(null);
            setError(null);
          }}
        >
          {apps.map((a) => (
            <option key={a.name} value={a.name}>
              {a.title}
            </option>
          ))}
        </select>
      </p>
      {template?.description && <p>{template.description}</p>}
      {template?.parameters.map((p) => (
        <Field
          key={`${template.name}.${p.name}`}
          p={p}
          value={values[p.name] ?? ''}
          problems={problems[p.name]}
          onValue={(v) => {
            setValues((old) => ({ ...old, [p.name]: v }));
            setServerProblems(null);
            setError(null);
          }}
          onError={setError}
        />
      ))}
      {problems['(jdl)'] && (
        <p class="error" role="alert">
          {problems['(jdl)'].join('; ')}
        </p>
      )}
      {check.jdl && (
        <details>
          <summary>JDL</summary>
          <pre class="jdl" data-testid="form-jdl">
            {check.jdl}
          </pre>
        </details>
      )}
      {error && serverProblems === null && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <button type="submit" disabled={busy || hasProblems}>
        Submit
      </button>
    </form>
  );
}
