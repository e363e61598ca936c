// The API client: JSON calls with the session's CSRF token, uploads with progress.
let csrf = "";
// The shared folder the page works in ("": the caller's own folder); every request says it.
let space = sessionStorage.getItem("qsfs-space") || "";

// An API URL of this origin, in the current space.
function apiUrl(path) {
  const u = new URL(path, location.origin);
  if (space) u.searchParams.set("space", space);
  return u;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function failure(res) {
  let message = res.statusText;
  try {
    message = (await res.json()).error || message;
  } catch (_) { /* not JSON */ }
  return new ApiError(res.status, message);
}

async function call(method, path, { query, json, body, headers, ownSpace } = {}) {
  const url = ownSpace ? new URL(path, location.origin) : apiUrl(path);
  for (const [k, v] of Object.entries(query || {})) url.searchParams.set(k, v);
  const h = { ...(headers || {}) };
  if (method !== "GET") h["X-CSRF-Token"] = csrf;
  if (json !== undefined) {
    h["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  }
  const res = await fetch(url, { method, headers: h, body, credentials: "same-origin" });
  if (!res.ok) throw await failure(res);
  return res;
}

// Pieces of a resumable upload, and how often one is tried again before giving up.
const TUS_PIECE = 8 << 20;
const TUS_RETRIES = 8;

const b64 = (text) => btoa(String.fromCharCode(...new TextEncoder().encode(text)));

// The SHA-1 of a Blob, base64 (none where WebCrypto is missing: plain HTTP off loopback).
async function sha1(blob) {
  if (!globalThis.crypto || !crypto.subtle) return null;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-1", await blob.arrayBuffer()));
  return btoa(String.fromCharCode(...digest));
}

async function tusOffset(at) {
  const res = await call("HEAD", at, { headers: { "Tus-Resumable": "1.0.0" } });
  return Number(res.headers.get("Upload-Offset"));
}

// PATCH one piece with progress; the new offset.
function sendPiece(at, piece, headers, onSent) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PATCH", apiUrl(at));
    for (const [k, v] of Object.entries({ ...headers, "X-CSRF-Token": csrf })) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => onSent(e.loaded);
    xhr.onload = () => {
      if (xhr.status === 204) return resolve(Number(xhr.getResponseHeader("Upload-Offset")));
      let msg = xhr.statusText;
      try { msg = JSON.parse(xhr.responseText).error; } catch (_) { /* keep */ }
      reject(new ApiError(xhr.status, msg));
    };
    xhr.onerror = () => reject(new ApiError(0, "network error"));
    xhr.send(piece);
  });
}

export const api = {
  get space() { return space; },
  // Work in shared folder `name` ("" for one's own folder).
  setSpace(name) {
    space = name;
    if (name) sessionStorage.setItem("qsfs-space", name); else sessionStorage.removeItem("qsfs-space");
  },
  async sharedFolders() {
    return (await call("GET", "/api/shared", { ownSpace: true })).json();
  },
  async setShared(name, members) {
    return (await call("POST", "/api/shared", { json: { name, members }, ownSpace: true })).json();
  },
  async forgetShared(name) {
    return (await call("POST", "/api/shared/delete", { json: { name }, ownSpace: true })).json();
  },
  // The signed-in party: {csrf, user, admin}.
  async session() {
    const res = await call("GET", "/api/session");
    const me = await res.json();
    csrf = me.csrf;
    return me;
  },
  async sessions() {
    return (await call("GET", "/api/sessions")).json();
  },
  // One session by id, or all of the caller's (this one too) with no id.
  async endSessions(id) {
    const json = id ? { id } : { all: true };
    return (await call("POST", "/api/sessions/end", { json })).json();
  },
  async appPasswords() {
    return (await call("GET", "/api/app-passwords")).json();
  },
  async makeAppPassword(label) {
    return (await call("POST", "/api/app-passwords", { json: { label } })).json();
  },
  async revokeAppPassword(id) {
    return (await call("POST", "/api/app-passwords/revoke", { json: { id } })).json();
  },
  async accessKeys() {
    return (await call("GET", "/api/access-keys")).json();
  },
  async makeAccessKey(label) {
    return (await call("POST", "/api/access-keys", { json: { label } })).json();
  },
  async revokeAccessKey(id) {
    return (await call("POST", "/api/access-keys/revoke", { json: { id } })).json();
  },
  // An account's name and password, or (no name) the access token.
  async login(user, secret) {
    const json = user ? { user, password: secret } : { token: secret };
    const res = await call("POST", "/api/login", { json });
    const me = await res.json();
    csrf = me.csrf;
    return me;
  },
  async logout() {
    await call("POST", "/api/logout");
    csrf = "";
  },
  async list(path, { offset = 0, limit = 200, sort = "name", order = "asc" } = {}) {
    return (await call("GET", "/api/list", { query: { path, offset, limit, sort, order } })).json();
  },
  async search(path, q) {
    return (await call("GET", "/api/search", { query: { path, q } })).json();
  },
  async mkdir(path) {
    return (await call("POST", "/api/mkdir", { json: { path } })).json();
  },
  async copy(from, to) {
    return (await call("POST", "/api/copy", { json: { from, to } })).json();
  },
  // A new name in the same folder.
  async renameTo(from, name) {
    return (await call("POST", "/api/rename", { json: { from, to_name: name } })).json();
  },
  async rename(from, to) {
    return (await call("POST", "/api/rename", { json: { from, to } })).json();
  },
  async remove(path) {
    return (await call("POST", "/api/delete", { json: { path } })).json();
  },
  async status() {
    return (await call("GET", "/api/status")).json();
  },
  async users() {
    return (await call("GET", "/api/users")).json();
  },
  async addUser(name, password, admin, quota) {
    return (await call("POST", "/api/users", { json: { name, password, admin, quota } })).json();
  },
  async trash() {
    return (await call("GET", "/api/trash")).json();
  },
  // Back where it was, or at `to`; a name taken answers 409 (err.status).
  async restoreTrash(id, to) {
    return (await call("POST", "/api/trash/restore", { json: { id, to } })).json();
  },
  // One item by id, or the whole trash with no id.
  async removeTrash(id) {
    const json = id ? { id } : { all: true };
    return (await call("POST", "/api/trash/remove", { json })).json();
  },
  // Share links: `link` = {path, kind: "read"|"drop", expires_days, password, max_uses}.
  async shares() {
    return (await call("GET", "/api/shares")).json();
  },
  async share(link) {
    return (await call("POST", "/api/shares", { json: link })).json();
  },
  async revokeShare(id) {
    return (await call("POST", "/api/shares/revoke", { json: { id } })).json();
  },
  async deleteUser(name) {
    return (await call("POST", "/api/users/delete", { json: { name } })).json();
  },
  // An admin sets `name`'s password; without a name, the caller's own (with `current`).
  async setPassword({ name, password, current }) {
    const res = await call("POST", "/api/users/password", { json: { name, password, current } });
    const answer = await res.json();
    if (answer.csrf) csrf = answer.csrf;
    return answer;
  },
  async markdown(text) {
    return (await call("POST", "/api/markdown", { body: text })).text();
  },
  // The text of a file and its ETag (for conflict detection on save).
  async readText(path) {
    const res = await call("GET", "/api/file", { query: { path } });
    return { text: await res.text(), etag: res.headers.get("ETag") };
  },
  // Save text; `etag` makes the server refuse (412) if the file changed since it was read.
  async saveText(path, text, etag) {
    const headers = etag ? { "If-Match": etag } : {};
    const res = await call("PUT", "/api/file", { query: { path }, body: text, headers });
    return res.json();
  },
  fileUrl(path, download = false) {
    const u = apiUrl("/api/file");
    u.searchParams.set("path", path);
    if (download) u.searchParams.set("download", "1");
    return u.pathname + u.search;
  },
  // A picture's thumbnail; `version` (its mtime) changes the URL when the picture changes.
  thumbUrl(path, version) {
    const u = apiUrl("/api/thumb");
    u.searchParams.set("path", path);
    u.searchParams.set("v", version);
    return u.pathname + u.search;
  },
  // The folder as a zip, or only the entries `names` of it.
  zipUrl(path, names) {
    const u = apiUrl("/api/zip");
    u.searchParams.set("path", path);
    if (names) u.searchParams.set("names", JSON.stringify(names));
    return u.pathname + u.search;
  },
  // Upload a large File to `path` over tus in pieces, resuming an earlier try of the same
  // file (same path, size and modification time: kept in localStorage) from the offset the
  // server kept; a dropped piece is retried after a pause. `onProgress(sent, total)`;
  // `onResume(offset)` when it starts from an earlier try.
  async resumableUpload(path, file, onProgress, onResume, overwrite = true) {
    const key = `qsfs-tus:${space}:${path}:${file.size}:${file.lastModified}`;
    const tus = { "Tus-Resumable": "1.0.0" };
    let at = localStorage.getItem(key);
    let offset = 0;
    if (at) {
      try {
        offset = await tusOffset(at);
        if (offset > 0) onResume(offset);
      } catch (e) {
        if (e.status === 401) throw e;
        at = null; // finished, abandoned or expired: start again
      }
    }
    if (!at) {
      const meta = `path ${b64(path)},filename ${b64(file.name)},overwrite ${b64(String(overwrite))}`;
      const res = await call("POST", "/api/tus", { headers: { ...tus, "Upload-Length": String(file.size), "Upload-Metadata": meta } });
      at = res.headers.get("Location");
      localStorage.setItem(key, at);
    }
    let failures = 0;
    while (offset < file.size) {
      const piece = file.slice(offset, offset + TUS_PIECE);
      const headers = { ...tus, "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" };
      const sum = await sha1(piece);
      if (sum) headers["Upload-Checksum"] = "sha1 " + sum;
      try {
        offset = await sendPiece(at, piece, headers, (sent) => onProgress(offset + sent, file.size));
        failures = 0;
      } catch (e) {
        if (e.status === 401 || e.status === 404 || e.status === 409 || e.status === 507 || ++failures > TUS_RETRIES) throw e;
        await new Promise((r) => setTimeout(r, Math.min(30_000, 1000 * 2 ** failures)));
        offset = await tusOffset(at).catch(() => offset);
      }
    }
    localStorage.removeItem(key);
    return { path, size: file.size };
  },
  // Upload a File or Blob to `path`, streamed by the browser; `onProgress(sent, total)`.
  // `overwrite` false: a file of that name is kept and the upload refused (409).
  upload(path, file, onProgress, overwrite = true) {
    return new Promise((resolve, reject) => {
      const u = apiUrl("/api/file");
      u.searchParams.set("path", path);
      u.searchParams.set("parents", "1");
      u.searchParams.set("overwrite", overwrite ? "1" : "0");
      const xhr = new XMLHttpRequest();
      xhr.open("PUT", u);
      xhr.setRequestHeader("X-CSRF-Token", csrf);
      xhr.upload.onprogress = (e) => onProgress && onProgress(e.loaded, e.total);
      xhr.onload = () => {
        if (xhr.status >= 200 && xhr.status < 300) resolve(JSON.parse(xhr.responseText));
        else {
          let msg = xhr.statusText;
          try { msg = JSON.parse(xhr.responseText).error; } catch (_) { /* keep */ }
          reject(new ApiError(xhr.status, msg));
        }
      };
      xhr.onerror = () => reject(new ApiError(0, "network error"));
      xhr.send(file);
    });
  },
};
