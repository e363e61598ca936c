// The qsfs file browser: login, folders (list and grid, selection and bulk actions,
// search), shared folders, the trash, previews and the lightbox, the text/Markdown editor
// with conflict detection. Uploads (uploads.js), share links (shares.js) and the other
// panels (panels.js) are modules of their own.
import { api, ApiError } from "/assets/api.js";
import { highlight, escape } from "/assets/highlight.js";
import { size, tableRow, button, ask } from "/assets/ui.js";
import { shareEntry, showShares } from "/assets/shares.js";
import { initUploads } from "/assets/uploads.js";
import { initPanels, refreshHealthDot } from "/assets/panels.js";

const $ = (id) => document.getElementById(id);
const PAGE = 200;
const TEXT_EXT = new Set(["txt", "md", "markdown", "rs", "c", "h", "cpp", "hpp", "py", "js", "ts", "go", "java", "sh", "toml", "yaml", "yml", "ini", "cfg", "conf", "log", "csv", "xml", "html", "htm", "css", "sql", "rb", "lua", "mk", "json"]);
const IMAGE_EXT = new Set(["png", "jpg", "jpeg", "gif", "webp", "svg", "bmp", "ico"]);
const VIDEO_EXT = new Set(["mp4", "m4v", "webm", "ogv"]);
const AUDIO_EXT = new Set(["mp3", "ogg", "oga", "wav", "flac", "m4a"]);

// `entries`: what the listing shows (the lightbox steps through its pictures).
// `picked`: the selected entries by path; `search`: the query whose results are shown.
const state = { path: "/", sort: "name", order: "asc", shown: 0, total: 0, entries: [], picked: new Map(), search: "", view: localStorage.getItem("qsfs-view") || "list" };
const THUMB_EXT = new Set(["png", "jpg", "jpeg", "gif", "webp"]);
// Inline SVG (no icon font or emoji font needed).
const svg = (body) => `<svg viewBox="0 0 16 16" width="16" height="16" aria-hidden="true">${body}</svg>`;
const ICONS = {
  dir: svg('<path d="M1 3h5l2 2h7v8H1z" fill="#e8b84a"/>'),
  file: svg('<path d="M3 1h7l3 3v11H3z" fill="#c9d2e0"/><path d="M10 1v3h3" fill="#9aa7ba"/>'),
  symlink: svg('<path d="M3 1h7l3 3v11H3z" fill="#c9d2e0"/><path d="M6 10l4-4M7 6h3v3" stroke="#2e6fdb" fill="none"/>'),
};

const ext = (name) => (name.includes(".") ? name.split(".").pop().toLowerCase() : "");
const join = (dir, name) => (dir === "/" ? "/" + name : dir + "/" + name);
const parentOf = (p) => p.replace(/\/[^/]*$/, "") || "/";
const nameOf = (p) => p.split("/").pop();

function say(text, error = false) {
  const m = $("message");
  m.textContent = text;
  m.className = error ? "error" : "";
}

function fail(e) {
  if (e instanceof ApiError && e.status === 401) return showLogin();
  say(e.message || String(e), true);
}

// ------------------------------------------------------------------ login
function showLogin() {
  $("main-view").hidden = true;
  $("login-view").hidden = false;
  $("user").focus();
}

// `me`: the signed-in party ({user, admin}); the storage's health is for admins.
async function showMain(me) {
  $("login-view").hidden = true;
  $("main-view").hidden = false;
  $("whoami").textContent = me.user;
  $("health-button").hidden = !me.admin;
  $("accounts-button").hidden = !me.admin;
  $("own-password").hidden = !me.account; // the access token has no password to change
  await enterSpaces(me);
  const fromHash = decodeURIComponent(location.hash.slice(1));
  await open(fromHash.startsWith("/") ? fromHash : "/");
  if (me.admin) refreshHealthDot();
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-error").textContent = "";
  try {
    const me = await api.login($("user").value.trim(), $("token").value);
    $("token").value = "";
    // A sign-in starts at the top of the caller's folder, not where the last one was.
    history.replaceState(null, "", location.pathname);
    api.setSpace("");
    await showMain(me);
  } catch (e) {
    $("login-error").textContent = e.message;
  }
});

$("logout").addEventListener("click", async () => {
  try { await api.logout(); } catch (_) { /* gone anyway */ }
  showLogin();
});

// ------------------------------------------------------------------ listing
// The breadcrumbs, from the listing's own (a folder's path may not be text: see paths.rs).
function crumbs(list = []) {
  const nav = $("crumbs");
  nav.replaceChildren();
  const link = (label, path) => {
    const a = document.createElement("a");
    a.textContent = label;
    a.dataset.path = path;
    a.addEventListener("click", () => open(path));
    return a;
  };
  nav.append(link(api.space ? `Shared: ${api.space}` : "Home", "/"));
  for (const c of list) {
    const sep = document.createElement("span");
    sep.className = "sep";
    sep.textContent = "/";
    nav.append(sep, link(c.name, c.path));
  }
}

// A file name is a real link (middle-click, new tab, keyboard focus); a plain click opens
// the folder or the preview in the page.
function nameLink(a, e) {
  a.href = e.kind === "dir" ? "#" + encodeURIComponent(e.path) : api.fileUrl(e.path);
  a.addEventListener("click", (ev) => {
    if (ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
    ev.preventDefault();
    if (e.kind === "dir") open(e.path); else preview(e);
  });
}

function row(e) {
  const tr = document.createElement("tr");
  tr.dataset.name = e.name;
  tr.dataset.kind = e.kind;
  const icon = ICONS[e.kind] || ICONS.file;
  const when = e.mtime ? new Date(e.mtime).toLocaleString() : "";
  tr.innerHTML = `<td class="pick"><input type="checkbox"></td><td class="name"><span class="icon">${icon}</span><a></a></td>
    <td class="num">${e.kind === "dir" ? "" : size(e.size)}</td><td class="when">${escape(when)}</td>
    <td class="actions"><button class="more" type="button" title="Actions" aria-label="Actions">⋯</button><span class="acts">
    <a class="button download" title="Download">Download</a>
    <button class="share" title="Make a link for people without an account">Share</button>
    <button class="rename" title="Rename or move">Rename</button>
    <button class="delete" title="Delete">Delete</button></span></td>`;
  const a = tr.querySelector("td.name a");
  a.textContent = e.name;
  nameLink(a, e);
  const pick = tr.querySelector("td.pick input");
  pick.setAttribute("aria-label", `Select ${e.name}`);
  pick.checked = state.picked.has(e.path);
  pick.addEventListener("change", () => {
    if (pick.checked) state.picked.set(e.path, e); else state.picked.delete(e.path);
    showPicked();
  });
  const dl = tr.querySelector("a.download");
  dl.href = e.kind === "dir" ? api.zipUrl(e.path) : api.fileUrl(e.path, true);
  // On a narrow screen the actions fold into a menu.
  tr.querySelector("button.more").addEventListener("click", () => {
    for (const o of document.querySelectorAll("#entries tr.open")) if (o !== tr) o.classList.remove("open");
    tr.classList.toggle("open");
  });
  tr.querySelector("button.share").addEventListener("click", () => shareEntry(e));
  tr.querySelector("button.rename").addEventListener("click", () => renameEntry(e));
  tr.querySelector("button.delete").addEventListener("click", () => deleteEntry(e));
  return tr;
}

// A tile of the grid view: the picture's thumbnail, or the kind's icon.
function tile(e) {
  const a = document.createElement("a");
  a.className = "tile";
  a.dataset.name = e.name;
  nameLink(a, e);
  const pic = document.createElement("span");
  pic.className = "pic";
  if (e.kind === "file" && THUMB_EXT.has(ext(e.name))) {
    const img = document.createElement("img");
    img.loading = "lazy";
    img.alt = "";
    img.src = api.thumbUrl(e.path, e.mtime);
    img.onerror = () => { pic.innerHTML = ICONS.file; };
    pic.append(img);
  } else {
    pic.innerHTML = ICONS[e.kind] || ICONS.file;
  }
  const label = document.createElement("span");
  label.className = "label";
  label.textContent = e.name;
  a.append(pic, label);
  return a;
}

function showView() {
  const grid = state.view === "grid";
  $("listing").hidden = grid;
  $("grid").hidden = !grid;
  $("view-toggle").textContent = grid ? "List view" : "Grid view";
}

$("view-toggle").addEventListener("click", () => {
  state.view = state.view === "grid" ? "list" : "grid";
  localStorage.setItem("qsfs-view", state.view);
  showView();
});

async function load(append) {
  const offset = append ? state.shown : 0;
  const l = await api.list(state.path, { offset, limit: PAGE, sort: state.sort, order: state.order });
  if (!append) crumbs(l.crumbs);
  const body = $("entries");
  if (!append) {
    body.replaceChildren();
    $("grid").replaceChildren();
    state.entries = [];
  }
  for (const e of l.entries) {
    body.append(row(e));
    $("grid").append(tile(e));
    state.entries.push(e);
  }
  state.shown = offset + l.entries.length;
  state.total = l.total;
  $("more").hidden = state.shown >= state.total;
  $("more").textContent = `Show more (${state.total - state.shown} left)`;
  $("empty").hidden = state.total !== 0;
  for (const b of document.querySelectorAll("button.sort")) {
    b.classList.toggle("asc", b.dataset.sort === state.sort && state.order === "asc");
    b.classList.toggle("desc", b.dataset.sort === state.sort && state.order === "desc");
  }
}

async function open(path) {
  try {
    state.path = path;
    state.search = "";
    state.picked.clear();
    showPicked();
    history.replaceState(null, "", "#" + encodeURIComponent(path));
    crumbs();
    $("download-folder").href = api.zipUrl(path);
    $("search").value = "";
    await load(false);
    say("");
  } catch (e) {
    if (path !== "/" && e.status === 404) return open("/");
    fail(e);
  }
}

$("more").addEventListener("click", () => load(true).catch(fail));
for (const b of document.querySelectorAll("button.sort")) {
  b.addEventListener("click", () => {
    state.order = state.sort === b.dataset.sort && state.order === "asc" ? "desc" : "asc";
    state.sort = b.dataset.sort;
    if (state.search) showResults(); else load(false).catch(fail);
  });
}

// Search results sort as the header says: folders first, then by the chosen key.
function sorted(entries) {
  const key = { name: (e) => e.name.toLowerCase(), size: (e) => e.size, mtime: (e) => e.mtime }[state.sort];
  const dir = state.order === "desc" ? -1 : 1;
  return [...entries].sort((a, b) => {
    if ((a.kind === "dir") !== (b.kind === "dir")) return a.kind === "dir" ? -1 : 1;
    const [x, y] = [key(a), key(b)];
    return (x < y ? -1 : x > y ? 1 : 0) * dir;
  });
}

function showResults() {
  const results = sorted(state.results);
  state.entries = results;
  $("entries").replaceChildren(...results.map((e) => {
    const tr = row(e);
    tr.querySelector("td.name a").textContent = e.path;
    return tr;
  }));
  $("grid").replaceChildren(...results.map(tile));
  for (const b of document.querySelectorAll("button.sort")) {
    b.classList.toggle("asc", b.dataset.sort === state.sort && state.order === "asc");
    b.classList.toggle("desc", b.dataset.sort === state.sort && state.order === "desc");
  }
}

$("search-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const q = $("search").value.trim();
  if (!q) return open(state.path);
  try {
    const r = await api.search(state.path, q);
    state.search = q;
    state.results = r.results;
    showResults();
    $("more").hidden = true;
    $("empty").hidden = true;
    say(`${r.results.length} found${r.truncated ? " (stopped early: refine the search)" : ""}`);
  } catch (e) { fail(e); }
});

// ------------------------------------------------------------------ selection
function showPicked() {
  const n = state.picked.size;
  $("bulk").hidden = n === 0;
  $("bulk-count").textContent = `${n} selected`;
  const picked = [...state.picked.values()];
  const oneFolder = picked.every((e) => parentOf(e.path) === state.path);
  $("bulk-download").hidden = !oneFolder;
  $("bulk-download").href = api.zipUrl(state.path, picked.map((e) => e.name));
  $("pick-all").checked = n > 0 && n === state.entries.length;
}

$("pick-all").addEventListener("change", () => {
  state.picked.clear();
  if ($("pick-all").checked) for (const e of state.entries) state.picked.set(e.path, e);
  for (const box of document.querySelectorAll("#entries td.pick input")) box.checked = $("pick-all").checked;
  showPicked();
});

$("bulk-clear").addEventListener("click", () => {
  state.picked.clear();
  for (const box of document.querySelectorAll("#entries td.pick input")) box.checked = false;
  showPicked();
});

// Run `one` on each selected entry; say how many worked and why the others did not.
async function onPicked(verb, one) {
  const picked = [...state.picked.values()];
  const failed = [];
  for (const e of picked) {
    try { await one(e); } catch (err) { failed.push(`${e.name}: ${err.message}`); }
  }
  state.picked.clear();
  await load(false).catch(fail);
  showPicked();
  say(`${verb} ${picked.length - failed.length} of ${picked.length}${failed.length ? " — " + failed.join("; ") : ""}`, failed.length > 0);
}

$("bulk-delete").addEventListener("click", async () => {
  if (!(await ask(`Move ${state.picked.size} item(s) to the trash?`, "", { input: false, ok: "Delete" }))) return;
  await onPicked("Deleted", (e) => api.remove(e.path));
});

for (const [id, verb, act] of [["bulk-move", "Moved", (f, t) => api.rename(f, t)], ["bulk-copy", "Copied", (f, t) => api.copy(f, t)]]) {
  $(id).addEventListener("click", async () => {
    const to = await ask(`${verb === "Moved" ? "Move" : "Copy"} ${state.picked.size} item(s) into the folder:`, state.path);
    if (!to) return;
    await onPicked(verb, (e) => act(e.path, join(to.startsWith("/") ? to : join(state.path, to), e.name)));
  });
}

// ------------------------------------------------------------------ dialogs
for (const d of document.querySelectorAll("dialog")) {
  for (const b of d.querySelectorAll("button.close")) b.addEventListener("click", () => d.close());
}
$("preview").addEventListener("close", () => $("preview-body").replaceChildren());

$("new-folder").addEventListener("click", async () => {
  const name = await ask("Name of the new folder", "");
  if (!name) return;
  try {
    await api.mkdir(join(state.path, name));
    await load(false);
    say(`Folder ${name} created`);
  } catch (e) { fail(e); }
});

async function renameEntry(e) {
  const to = await ask("New name, or a path to move it to", e.name);
  if (!to || to === e.name) return;
  try {
    // A bare name stays in the folder (whatever bytes the old name had); a path moves.
    const r = to.startsWith("/") ? await api.rename(e.path, to)
      : to.includes("/") ? await api.rename(e.path, join(state.path, to))
        : await api.renameTo(e.path, to);
    await load(false);
    say(`Renamed to ${r.path.startsWith("/") ? r.path : to}`);
  } catch (err) { fail(err); }
}

async function deleteEntry(e) {
  const what = e.kind === "dir" ? `the folder ${e.name} and everything in it` : e.name;
  if (!(await ask(`Move ${what} to the trash?`, "", { input: false, ok: "Delete" }))) return;
  try {
    await api.remove(e.path);
    await load(false);
    say(`Moved ${e.name} to the trash`);
  } catch (err) { fail(err); }
}

// ------------------------------------------------------------------ shared folders
// The caller's shared folders: the header button shows when there are any (or for an
// admin, who makes them); a space that is gone is left.
async function enterSpaces(me) {
  state.me = me;
  let folders = [];
  try { folders = await api.sharedFolders(); } catch (_) { /* none */ }
  $("shared-button").hidden = !folders.length && !me.admin;
  const here = folders.find((f) => f.name === api.space);
  if (api.space && !here) api.setSpace("");
  setAccess(here ? here.access : "write");
}

// Read-only: the buttons that change things go.
function setAccess(access) {
  state.access = access;
  for (const id of ["new-folder", "upload-files-label", "upload-folder-label"]) $(id).hidden = access === "read";
  document.body.classList.toggle("read-only", access === "read");
}

async function goSpace(name, access) {
  api.setSpace(name);
  setAccess(access);
  $("shared").close();
  await open("/");
}

const memberText = (members) => Object.entries(members || {}).map(([n, a]) => `${n}:${a}`).join(", ");

async function showShared() {
  const folders = await api.sharedFolders();
  const admin = state.me && state.me.admin;
  $("shared-form").hidden = !admin;
  const own = tableRow([api.space ? "Your own files" : "Your own files (here now)", "", ""], [button("Open", () => goSpace("", "write"))]);
  $("shared-list").replaceChildren(own, ...folders.map((f) => {
    const actions = [button("Open", () => goSpace(f.name, f.access), "open-space")];
    if (admin) {
      actions.push(" ", button("Edit", () => { $("shared-name").value = f.name; $("shared-members").value = memberText(f.members); }));
      actions.push(" ", button("Forget", async () => {
        if (!(await ask(`Forget the shared folder ${f.name}? Its members lose it; its files stay in shared/${f.name}.`, "", { input: false, ok: "Forget" }))) return;
        try { await api.forgetShared(f.name); await showShared(); } catch (e) { $("shared-message").textContent = e.message; }
      }));
    }
    const row = tableRow([f.name + (f.name === api.space ? " (here now)" : ""), f.access === "write" ? "read and write" : "read only", admin ? memberText(f.members) : ""], actions);
    row.dataset.name = f.name;
    return row;
  }));
}

$("shared-button").addEventListener("click", async () => {
  $("shared-message").textContent = "";
  $("shared").showModal();
  try { await showShared(); } catch (e) { $("shared-message").textContent = e.message; }
});

$("shared-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const members = {};
  for (const part of $("shared-members").value.split(",").map((p) => p.trim()).filter(Boolean)) {
    const [name, access = "write"] = part.split(":").map((x) => x.trim());
    members[name] = access === "read" ? "read" : "write";
  }
  try {
    await api.setShared($("shared-name").value.trim(), members);
    $("shared-message").textContent = `Saved ${$("shared-name").value.trim()}.`;
    $("shared-name").value = $("shared-members").value = "";
    await showShared();
  } catch (e) { $("shared-message").textContent = e.message; }
});

// ------------------------------------------------------------------ trash
async function showTrash() {
  const t = await api.trash();
  $("trash-summary").textContent = t.items.length
    ? `${t.items.length} item(s), ${size(t.size)}; each is removed for good ${t.days} days after it was deleted.`
    : `The trash is empty. Deleted items stay here ${t.days} days.`;
  $("trash-list").replaceChildren(...t.items.map((i) => {
    const when = new Date(i.deleted * 1000).toLocaleString();
    const restore = async () => {
      try {
        await api.restoreTrash(i.id);
      } catch (err) {
        if (err.status !== 409) { $("trash-summary").textContent = err.message; return; }
        const to = await ask(`${i.shown || i.path} exists again. Restore it as:`, (i.shown || i.path) + " (restored)");
        if (to == null) return;
        try { await api.restoreTrash(i.id, to); } catch (e2) { $("trash-summary").textContent = e2.message; return; }
      }
      await showTrash();
      await load(false);
    };
    const drop = async () => {
      if (!(await ask(`Delete ${i.shown || i.path} for good? This cannot be undone.`, "", { input: false, ok: "Delete forever" }))) return;
      await api.removeTrash(i.id);
      await showTrash();
    };
    return tableRow([i.shown || i.path, i.kind === "dir" ? "folder" : i.kind, size(i.size), when],
      [button("Restore", restore, "restore"), " ", button("Delete forever", drop)]);
  }));
}

$("shares-button").addEventListener("click", () => showShares().catch(fail));

$("trash-button").addEventListener("click", async () => {
  $("trash").showModal();
  try { await showTrash(); } catch (e) { $("trash-summary").textContent = e.message; }
});

$("empty-trash").addEventListener("click", async () => {
  if (!(await ask("Empty the trash? Everything in it is deleted for good.", "", { input: false, ok: "Empty" }))) return;
  try { await api.removeTrash(); await showTrash(); } catch (e) { $("trash-summary").textContent = e.message; }
});

// ------------------------------------------------------------------ preview and editor
async function preview(e) {
  const kind = ext(e.name);
  const body = $("preview-body");
  body.replaceChildren();
  $("preview-title").textContent = e.path;
  $("preview-download").href = api.fileUrl(e.path, true);
  $("preview-edit").hidden = !TEXT_EXT.has(kind);
  $("preview-edit").onclick = () => { $("preview").close(); edit(e.path); };
  const url = api.fileUrl(e.path);
  const pictures = state.entries.filter((p) => p.kind === "file" && IMAGE_EXT.has(ext(p.name)));
  const at = pictures.findIndex((p) => p.path === e.path);
  for (const [id, step] of [["preview-prev", -1], ["preview-next", 1]]) {
    const to = pictures[at + step];
    $(id).hidden = at < 0 || pictures.length < 2;
    $(id).disabled = !to;
    $(id).onclick = () => to && preview(to);
  }
  if (IMAGE_EXT.has(kind)) {
    const img = document.createElement("img");
    img.src = url;
    img.alt = e.name;
    body.append(img);
    $("preview-title").textContent = `${e.path} (${at + 1} of ${pictures.length})`;
  } else if (VIDEO_EXT.has(kind) || AUDIO_EXT.has(kind)) {
    const m = document.createElement(VIDEO_EXT.has(kind) ? "video" : "audio");
    m.controls = true;
    m.preload = "metadata";
    m.src = url;
    body.append(m);
  } else if (kind === "pdf") {
    const f = document.createElement("iframe");
    f.src = url;
    f.title = e.name;
    body.append(f);
  } else if (TEXT_EXT.has(kind)) {
    try {
      const { text } = await api.readText(e.path);
      if (kind === "md" || kind === "markdown") {
        const div = document.createElement("div");
        div.className = "markdown";
        div.innerHTML = await api.markdown(text); // sanitised by the server
        inDrive(div, parentOf(e.path));
        body.append(div);
      } else {
        const pre = document.createElement("pre");
        pre.className = "code";
        pre.innerHTML = highlight(text, kind);
        body.append(pre);
      }
    } catch (err) { fail(err); return; }
  } else {
    const p = document.createElement("p");
    p.textContent = `No preview for this kind of file (${size(e.size)}). Use Download.`;
    body.append(p);
  }
  if (!$("preview").open) $("preview").showModal();
}

// The lightbox steps with the arrow keys.
$("preview").addEventListener("keydown", (ev) => {
  const id = { ArrowLeft: "preview-prev", ArrowRight: "preview-next" }[ev.key];
  if (id && !$(id).hidden && !$(id).disabled) { ev.preventDefault(); $(id).click(); }
});

const editor = { path: "", etag: "", dirty: false, timer: 0 };

function editorState(text, error = false) {
  $("editor-state").textContent = text;
  $("editor-state").className = error ? "error" : "";
}

// A relative or drive-absolute path of a Markdown file's link, resolved against its folder
// (`..` and `.` taken out); null for a URL with a scheme or an anchor.
function drivePath(dir, ref) {
  if (/^([a-z][a-z0-9+.-]*:|\/\/|#)/i.test(ref)) return null;
  const clean = decodeURIComponent(ref.split(/[?#]/)[0]);
  const parts = [];
  for (const p of (clean.startsWith("/") ? clean : dir + "/" + clean).split("/")) {
    if (p === "..") parts.pop();
    else if (p && p !== ".") parts.push(p);
  }
  return "/" + parts.join("/");
}

// Relative images and links of a rendered Markdown file reach the drive: pictures load
// from it, links to files open them, links to folders open the folder.
function inDrive(container, dir) {
  for (const img of container.querySelectorAll("img[src]")) {
    const p = drivePath(dir, img.getAttribute("src"));
    if (p) img.src = api.fileUrl(p);
  }
  for (const a of container.querySelectorAll("a[href]")) {
    const ref = a.getAttribute("href");
    const p = drivePath(dir, ref);
    if (!p) continue;
    if (ref.endsWith("/")) {
      a.href = "#" + encodeURIComponent(p);
      a.addEventListener("click", (ev) => { ev.preventDefault(); $("preview").close(); open(p); });
    } else {
      a.href = api.fileUrl(p);
      a.target = "_blank";
      a.rel = "noopener";
    }
  }
}

async function edit(path) {
  try {
    const { text, etag } = await api.readText(path);
    Object.assign(editor, { path, etag, dirty: false });
    $("editor-title").textContent = path;
    $("editor-text").value = text;
    const md = ["md", "markdown"].includes(ext(path));
    $("editor-preview").hidden = !md;
    if (md) renderPreview();
    editorState("");
    $("editor").showModal();
  } catch (e) { fail(e); }
}

async function renderPreview() {
  try {
    $("editor-preview").innerHTML = await api.markdown($("editor-text").value);
    inDrive($("editor-preview"), parentOf(editor.path));
  } catch (_) { /* keep the last preview */ }
}

$("editor-text").addEventListener("input", () => {
  editor.dirty = true;
  editorState("Unsaved changes");
  if (!$("editor-preview").hidden) {
    clearTimeout(editor.timer);
    editor.timer = setTimeout(renderPreview, 250);
  }
});

async function save(force) {
  try {
    const r = await api.saveText(editor.path, $("editor-text").value, force ? null : editor.etag);
    editor.etag = r.etag;
    editor.dirty = false;
    editorState("Saved");
    load(false).catch(() => {});
  } catch (e) {
    if (e.status === 412) {
      editorState(e.message, true);
      const again = await ask(
        "The file changed since you opened it. Overwrite it with your version? (Cancel keeps both: copy your text, then reopen the file.)",
        "", { input: false, ok: "Overwrite" });
      if (again) return save(true);
    } else {
      editorState(e.message, true);
    }
  }
}

$("editor-save").addEventListener("click", () => save(false));
$("editor-text").addEventListener("keydown", (ev) => {
  if ((ev.ctrlKey || ev.metaKey) && ev.key === "s") { ev.preventDefault(); save(false); }
});
$("editor").addEventListener("cancel", (ev) => {
  if (editor.dirty && !confirm("Discard unsaved changes?")) ev.preventDefault();
});

// ------------------------------------------------------------------ uploads
initUploads({ state, load, fail, say, showLogin, join, parentOf, nameOf });

// ------------------------------------------------------------------ panels
initPanels({ showLogin });

// ------------------------------------------------------------------ start
showView();
api.session().then(showMain, showLogin);
