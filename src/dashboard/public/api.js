// The gateway client: same-origin fetch with a timeout, the optional API key, and the link state
// (reachable or not) that the banner shows. Every other module talks to the gateway through here.

const KEY_STORAGE = 'calcmesh.apiKey';

/** Thrown when the gateway could not be reached at all (as opposed to answering with an error). */
export class Unreachable extends Error {}

const listeners = { link: new Set(), unauthorized: new Set() };
let lastContact = 0;
let reachable = undefined;

export function onLinkChange(fn) { listeners.link.add(fn); }
export function onUnauthorized(fn) { listeners.unauthorized.add(fn); }
export const lastContactAt = () => lastContact;

// The key lives in sessionStorage (this tab only); in memory too, for when storage is disabled.
let memoryKey = '';

export function apiKey() {
  try { return sessionStorage.getItem(KEY_STORAGE) ?? memoryKey; } catch { return memoryKey; }
}

export function setApiKey(key) {
  try {
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    else sessionStorage.removeItem(KEY_STORAGE);
  } catch { /* storage disabled: the key lives as long as the page */ }
  memoryKey = key;
}

function setReachable(value) {
  if (value) lastContact = Date.now();
  if (value === reachable) return;
  reachable = value;
  for (const fn of listeners.link) fn(value);
}

/**
 * Sends one request and resolves to `{ status, body }` for any HTTP answer (errors included);
 * rejects with Unreachable when no answer came back within `timeoutMs`.
 */
export async function request(path, { method = 'GET', json, timeoutMs = 4000 } = {}) {
  const headers = { accept: 'application/json' };
  const key = apiKey();
  if (key) headers.authorization = `Bearer ${key}`;
  if (json !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
      cache: 'no-store',
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    setReachable(false);
    throw new Unreachable(error instanceof Error ? error.message : String(error));
  }
  const text = await response.text().catch(() => '');
  let body;
  try { body = JSON.parse(text); } catch { body = undefined; }
  // A proxy's HTML 502 page means the gateway itself is not there.
  if (body === undefined && response.status >= 500) {
    setReachable(false);
    throw new Unreachable(`HTTP ${response.status}`);
  }
  setReachable(true);
  if (response.status === 401) for (const fn of listeners.unauthorized) fn();
  return { status: response.status, body };
}

/** `{"error":{"code","message"}}` as one line of text, whatever the body was. */
export function describeError(reply) {
  const error = reply.body?.error;
  if (error && typeof error.code === 'string') return `${reply.status} ${error.code}: ${error.message ?? ''}`.trim();
  return `HTTP ${reply.status}`;
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
