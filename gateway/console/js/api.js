// The JSON API client: bearer tokens kept in this tab's sessionStorage (never cookies, so
// no cross-site request carries them), one refresh on 401, errors as ApiError naming the field.

const KEY = 'switchboard.session';

/** An error answered by the API: `{"error": {"code", "message", "field"}}`. */
export class ApiError extends Error {
  constructor(status, code, message, field) {
    super(message);
    this.status = status;
    this.code = code;
    this.field = field || null;
  }
}

/** The stored session (`{access, refresh}`), or null. */
export function session() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY));
  } catch {
    return null;
  }
}

/** Stores the tokens of a login, signup or refresh answer. */
export function saveTokens(tokens) {
  sessionStorage.setItem(KEY, JSON.stringify({ access: tokens.accessToken, refresh: tokens.refreshToken }));
}

/** Forgets the session (logout). */
export function clearSession() {
  sessionStorage.removeItem(KEY);
}

let refreshing = null;

async function refresh() {
  const current = session();
  if (!current || !current.refresh) return false;
  refreshing ??= (async () => {
    try {
      const response = await fetch('/api/v1/auth/refresh', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ refreshToken: current.refresh }),
      });
      if (!response.ok) {
        clearSession();
        return false;
      }
      saveTokens(await response.json());
      return true;
    } finally {
      setTimeout(() => { refreshing = null; }, 0);
    }
  })();
  return refreshing;
}

async function send(method, path, body, contentType) {
  const headers = { Accept: 'application/json' };
  const current = session();
  if (current && current.access) headers.Authorization = `Bearer ${current.access}`;
  let payload;
  if (body !== undefined && body !== null) {
    headers['Content-Type'] = contentType || 'application/json';
    payload = contentType ? body : JSON.stringify(body);
  }
  return fetch(path, { method, headers, body: payload });
}

async function failure(response) {
  let detail = {};
  try {
    detail = (await response.json()).error || {};
  } catch {
    // not JSON: keep the status text
  }
  return new ApiError(response.status, detail.code || 'http_' + response.status,
    detail.message || response.statusText || 'request failed', detail.field);
}

/** Calls the API; resolves to the parsed JSON (null for 204), rejects with ApiError. */
export async function api(method, path, body, { contentType, raw } = {}) {
  let response = await send(method, path, body, contentType);
  if (response.status === 401 && session() && !path.startsWith('/api/v1/auth/login')) {
    if (await refresh()) response = await send(method, path, body, contentType);
  }
  if (!response.ok) throw await failure(response);
  if (raw) return response;
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

/** Downloads a file the API serves (with the session's token) under `filename`. */
export async function download(path, filename) {
  const response = await api('GET', path, null, { raw: true });
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** `/api/v1/tenants/{slug}` + rest, with the slug encoded. */
export function tenantPath(slug, rest = '') {
  return `/api/v1/tenants/${encodeURIComponent(slug)}${rest}`;
}

let me = null;

/** The caller (`GET /auth/me`), cached until `reload` or `forgetMe()`. */
export async function whoAmI(reload = false) {
  if (!session()) return null;
  if (!me || reload) me = await api('GET', '/api/v1/auth/me');
  return me;
}

/** Drops the cached caller (logout, a session the gateway refused). */
export function forgetMe() {
  me = null;
}
