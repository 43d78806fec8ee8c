// A small client for the dataengine API shared by the pages: the token lives in localStorage,
// errors come back as problem+json and are thrown with their field errors attached.
export const token = {
  get: () => localStorage.getItem('dataengine.token') ?? '',
  set: (t) => localStorage.setItem('dataengine.token', t),
  clear: () => localStorage.removeItem('dataengine.token'),
};

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail ?? `HTTP ${status}`);
    this.status = status;
    this.problem = problem ?? {};
    this.errors = problem?.errors ?? [];
  }
}

export async function api(path, { method = 'GET', body, raw = false } = {}) {
  const headers = { Authorization: `Bearer ${token.get()}` };
  // FormData goes as multipart (the browser writes its boundary); anything else as JSON.
  const form = body instanceof FormData;
  if (body !== undefined && !form) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : form ? body : JSON.stringify(body) });
  if (res.status === 204) return null;
  if (!res.ok) {
    let problem;
    try {
      problem = await res.json();
    } catch {
      problem = { detail: res.statusText };
    }
    throw new ApiError(res.status, problem);
  }
  return raw ? res : res.json();
}

/** Images need the bearer token too, so they are fetched and shown from a blob URL. */
export async function imageUrl(path) {
  const res = await api(path, { raw: true });
  return URL.createObjectURL(await res.blob());
}

export async function signedInUser() {
  if (!token.get()) return null;
  try {
    return (await api('/v1/me')).user;
  } catch (err) {
    if (err.status === 401) token.clear();
    return null;
  }
}

export function renderSignIn(root, onDone, hint) {
  root.innerHTML = `<form class="signin" id="signin">
    <h2>Sign in</h2><p>Paste your access token${hint ? ` (${hint})` : ''}.</p>
    <input id="token" type="password" autocomplete="off" placeholder="token" autofocus>
    <div class="field-error" id="token-error"></div>
    <button class="primary" type="submit">Sign in</button></form>`;
  root.querySelector('#signin').addEventListener('submit', async (e) => {
    e.preventDefault();
    token.set(root.querySelector('#token').value.trim());
    const user = await signedInUser();
    if (!user) {
      root.querySelector('#token-error').textContent = 'That token is not valid.';
      return;
    }
    onDone(user);
  });
}

export const escapeHtml = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
