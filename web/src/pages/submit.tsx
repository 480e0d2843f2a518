import type { ComponentChildren } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type { SubmitJobsAnswer } from '../../../api/index.js';
import { api, ApiError } from '../api.js';
import { checkJdl } from '../jdl-check.js';
import { navigate } from '../router.js';
import { FormsTab } from './forms.js';
import type { JdlProblem } from '../../../core/errors.js';

const HELLO = `[
  JobName = "hello";
  Executable = "/bin/echo";
  Arguments = "Hello from pilot-wms";
  StdOutput = "std.out";
  StdError = "std.err";
  OutputSandbox = { "std.out", "std.err" };
  CPUTime = 600;
]
`;

/** The Submit page: two tabs, the JDL editor (below) and Forms (application templates, forms.tsx). */
export function SubmitPage() {
  const [tab, setTab] = useState<'jdl' | 'forms'>(() => (new URLSearchParams(location.search).get('tab') === 'forms' ? 'forms' : 'jdl'));
  const tabs = (
    <div role="tablist" class="tabs">
      <button type="button" role="tab" aria-selected={tab === 'jdl'} onClick={() => setTab('jdl')}>
        JDL editor
      </button>
      <button type="button" role="tab" aria-selected={tab === 'forms'} onClick={() => setTab('forms')}>
        Forms
      </button>
    </div>
  );
  if (tab === 'forms') {
    return (
      <section>
        <h1>Submit</h1>
        {tabs}
        <FormsTab />
      </section>
    );
  }
  return <JdlEditor tabs={tabs} />;
}

/**
 * The JDL editor: the shared parser (core/jdl) checks the text on every input; problems are
 * shown beside their line and the Submit button stays disabled until there are none. The
 * services check again: their answer's problems are shown the same way.
 */
function JdlEditor({ tabs }: { tabs: ComponentChildren }) {
  const [text, setText] = useState(HELLO);
  const [serverProblems, setServerProblems] = useState<JdlProblem[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const check = useMemo(() => checkJdl(text), [text]);
  const problems = serverProblems ?? check.problems;
  const lines = text.split('\n');
  const bad = new Set(problems.map((p) => p.line));

  const submit = async (e: Event) => {
    e.preventDefault();
    if (check.problems.length > 0) return;
    setBusy(true);
    setError(null);
    try {
      const { jobIds } = await api<SubmitJobsAnswer>('POST', '/api/jobs', { jdl: text });
      navigate(jobIds.length === 1 ? `/jobs/${jobIds[0]}` : '/jobs');
    } catch (err) {
      if (err instanceof ApiError && err.problems.length > 0) setServerProblems(err.problems);
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <section>
      <h1>Submit</h1>
      {tabs}
      <form onSubmit={submit} class="editor">
        <div class="jdl-editor">
          <ol class="gutter" aria-hidden="true">
            {lines.map((_, i) => (
              <li key={i} class={bad.has(i + 1) ? 'bad' : ''}>
                {i + 1}
              </li>
            ))}
          </ol>
          <textarea
            name="jdl"
            aria-label="JDL"
            spellcheck={false}
            rows={Math.max(12, lines.length + 1)}
            value={text}
            onInput={(e) => {
              setText(e.currentTarget.value);
              setServerProblems(null);
              setError(null);
            }}
          />
        </div>
        {problems.length > 0 ? (
          <ul class="problems" data-testid="problems" role="alert">
            {problems.map((p, i) => (
              <li key={i} data-line={p.line}>
                Line {p.line}, column {p.column}: {p.message}
              </li>
            ))}
          </ul>
        ) : (
          <p class="ok" data-testid="jdl-ok">
            {check.jobs === 1 ? '1 job' : `${check.jobs} jobs`}, no problems.
          </p>
        )}
        {error && serverProblems === null && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" disabled={busy || check.problems.length > 0}>
          Submit
        </button>
      </form>
    </section>
  );
}
