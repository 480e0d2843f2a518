import { useState } from 'preact/hooks';
import type { Identity } from '../../../api/index.js';
import { api, ApiError, setToken } from '../api.js';

/** Sign in with a token (`wms token issue`, or the admin token the first start wrote). */
export function SignIn() {
  const [value, setValue] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event) => {
    e.preventDefault();
    const token = value.trim();
    if (!token) return;
    setBusy(true);
    setError(null);
    try {
      await api<Identity>('GET', '/api/tokens/self', undefined, token);
      setToken(token);
    } catch (err) {
      setError(
        err instanceof ApiError && err.status === 401 ? 'This token is not valid (or has expired).' : String((err as Error).message),
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="sign-in">
      <h1>pilot-wms</h1>
      <form onSubmit={submit}>
        <label for="token">Token</label>
        <textarea id="token" name="token" rows={4} value={value} onInput={(e) => setValue(e.currentTarget.value)} placeholder="eyJ…" />
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        {error && (
          <p class="error" role="alert">
            {error}
          </p>
        )}
      </form>
      <p class="hint">The token stays in this tab only (sessionStorage).</p>
    </main>
  );
}
