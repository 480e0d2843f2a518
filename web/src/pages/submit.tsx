import type { ComponentChildren } from 'preact';
import { useMemo, useState } from 'preact/hooks';
import type { SubmitJobsAnswer } from '../../../api/index.js';
import { api, ApiError } from '../api.js';
import { attachProblem, checkJdl, localInputFiles, withSandbox, type LocalFile } from '../jdl-check.js';
import { uploadFiles } from '../sandbox-archive.js';
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
 * services check again: their answer's problems are shown the same way. Local InputSandbox
 * files (which no worker can read) are attached below the problems, uploaded as one sandbox,
 * and replaced in the text by its `SB:<sha256>`.
 */
function JdlEditor({ tabs }: { tabs: ComponentChildren }) {
  const [text, setText] = useState(HELLO);
  const [serverProblems, setServerProblems] = useState<JdlProblem[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const check = useMemo(() => checkJdl(text), [text]);
  const localFiles = useMemo(() => localInputFiles(text), [text]);
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
        {localFiles.length > 0 && (
          <AttachFiles
            wanted={localFiles}
            onUploaded={(reference) => {
              setText((current) => withSandbox(current, localFiles, reference));
              setServerProblems(null);
              setError(null);
            }}
          />
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

/**
 * Offers to attach the InputSandbox files of the user's computer: the files picked must be the
 * ones listed (by base name); they are packed into one tar.gz, uploaded, and `onUploaded` gets
 * its `SB:<sha256>`.
 */
function AttachFiles({ wanted, onUploaded }: { wanted: LocalFile[]; onUploaded: (reference: string) => void }) {
  const [problem, setProblem] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const attach = async (input: HTMLInputElement) => {
    const files = [...(input.files ?? [])];
    input.value = ''; // picking the same files again is a new change
    if (files.length === 0) return;
    const why = attachProblem(
      wanted,
      files.map((f) => f.name),
    );
    setProblem(why);
    if (why !== null) return;
    setBusy(true);
    try {
      onUploaded(await uploadFiles(files));
    } catch (err) {
      setProblem((err as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <fieldset class="attach" data-testid="attach">
      <legend>Files from your computer</legend>
      <p>
        The InputSandbox lists{' '}
        {wanted.map((f, i) => (
          <span key={i}>
            {i > 0 && ', '}
            <code>{f.entry}</code>
          </span>
        ))}
        : no worker can read {wanted.length === 1 ? 'it' : 'them'} from here. Attach {wanted.length === 1 ? 'it' : 'them'}: uploaded as one
        sandbox, {wanted.length === 1 ? 'it becomes' : 'they become'} one <code>SB:&lt;sha256&gt;</code> entry.
      </p>
      <label>
        Attach files <input type="file" multiple disabled={busy} onChange={(e) => void attach(e.currentTarget)} />
      </label>
      {busy && <p role="status">Uploading…</p>}
      {problem !== null && (
        <p class="error" role="alert" data-testid="attach-problem">
          {problem}
        </p>
      )}
    </fieldset>
  );
}
