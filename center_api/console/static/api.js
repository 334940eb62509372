// Talking to the center API: the bearer token, JSON requests, and authenticated images as blob URLs.

const TOKEN_KEY = "gridwatch.token";
let token = sessionStorage.getItem(TOKEN_KEY) || "";
let onUnauthorized = () => {};

export class ApiError extends Error {
  // `code` is the center's machine-readable error code (`{"detail", "code"}` body), or null.
  constructor(status, detail, code = null) {
    super(detail || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export function getToken() { return token; }
export function setToken(value) {
  token = value || "";
  if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
  for (const url of images.values()) URL.revokeObjectURL(url);
  images.clear();
}
export function whenUnauthorized(callback) { onUnauthorized = callback; }

// A WebSocket URL on this host with the token in the query: browsers cannot set headers on a WebSocket.
export function socketUrl(path, params = {}) {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const query = new URLSearchParams({ ...params, token });
  return `${proto}://${location.host}${path}?${query}`;
}

function detailOf(body, status) {
  if (body && typeof body.detail === "string") return body.detail;
  if (body && Array.isArray(body.detail)) return body.detail.map((d) => d.msg).join("; ");
  return `HTTP ${status}`;
}

export async function api(path, { method = "GET", body, keepalive = false, timeoutMs = 15000 } = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  let response;
  try {
    response = await fetch(path, {
      method, headers, keepalive, signal: controller.signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, err.name === "AbortError" ? "the center did not answer in time" : "the center is unreachable");
  } finally {
    clearTimeout(timer);
  }
  if (response.status === 204) return null;
  let data = null;
  try { data = await response.json(); } catch { data = null; }
  if (!response.ok) {
    if (response.status === 401) onUnauthorized();
    const code = data && typeof data.code === "string" ? data.code : null;
    throw new ApiError(response.status, detailOf(data, response.status), code);
  }
  return data;
}

// Snapshots need the bearer token, which an <img src> cannot send: fetch them and keep a small cache of
// blob URLs (revoked when evicted) so the token never appears in a URL or an access log.
const images = new Map();
const IMAGE_CACHE = 300;

export async function imageUrl(path) {
  if (images.has(path)) {
    const url = images.get(path);
    images.delete(path);
    images.set(path, url);
    return url;
  }
  const response = await fetch(path, { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) throw new ApiError(response.status, "no snapshot");
  const url = URL.createObjectURL(await response.blob());
  images.set(path, url);
  while (images.size > IMAGE_CACHE) {
    const [oldest, old] = images.entries().next().value;
    images.delete(oldest);
    URL.revokeObjectURL(old);
  }
  return url;
}
