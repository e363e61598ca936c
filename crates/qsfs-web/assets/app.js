// The qsfs file browser: login, folders, uploads (picker and drag-and-drop, folders too),
// previews, the text/Markdown editor with conflict detection, the storage-health panel.
import { api, ApiError } from "/assets/api.js";
import { highlight, escape } from "/assets/highlight.js";
import { size, tableRow, button, ask } from "/assets/ui.js";
import { shareEntry, showShares } from "/assets/shares.js";

const $ = (id) => document.getElementById(id);
const PAGE = 200;
const TEXT_EXT = new Set(["txt", "md", "markdown", "rs", "c", "h", "cpp", "hpp", "py", "js", "ts", "go", "java", "sh", "toml", "yaml", "yml", "ini", "cfg", "conf", "log", "csv", "xml", "html", "htm", "css", "sql", "rb", "lua", "mk", "json"]);
const IMAGE_EXT = new Set(["png", "jpg", "jpeg", "gif", "webp", "svg", "bmp", "ico"]);
const VIDEO_EXT = new Set(["mp4", "m4v", "webm", "ogv"]);
const AUDIO_EXT = new Set(["mp3", "ogg", "oga", "wav", "flac", "m4a"]);

// `entries`: what the listing shows (the lightbox steps through its pictures).
const state = { path: "/", sort: "name", order: "asc", shown: 0, total: 0, entries: [], view: localStorage.getItem("qsfs-view") || "list" };
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
function crumbs() {
  const nav = $("crumbs");
  nav.replaceChildren();
  const parts = state.path.split("/").filter(Boolean);
  const link = (label, path) => {
    const a = document.createElement("a");
    a.textContent = label;
    a.dataset.path = path;
    a.addEventListener("click", () => open(path));
    return a;
  };
  nav.append(link(api.space ? `Shared: ${api.space}` : "Home", "/"));
  let acc = "";
  for (const p of parts) {
    acc += "/" + p;
    const sep = document.createElement("span");
    sep.className = "sep";
    sep.textContent = "/";
    nav.append(sep, link(p, acc));
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
  tr.innerHTML = `<td class="name"><span class="icon">${icon}</span><a></a></td>
    <td class="num">${e.kind === "dir" ? "" : size(e.size)}</td><td class="when">${escape(when)}</td>
    <td class="actions"><button class="more" type="button" title="Actions" aria-label="Actions">⋯</button><span class="acts">
    <a class="button download" title="Download">Download</a>
    <button class="share" title="Make a link for people without an account">Share</button>
    <button class="rename" title="Rename or move">Rename</button>
    <button class="delete" title="Delete">Delete</button></span></td>`;
  const a = tr.querySelector("td.name a");
  a.textContent = e.name;
  nameLink(a, e);
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
    load(false).catch(fail);
  });
}

$("search-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const q = $("search").value.trim();
  if (!q) return open(state.path);
  try {
    const r = await api.search(state.path, q);
    const body = $("entries");
    state.entries = r.results;
    body.replaceChildren(...r.results.map((e) => {
      const tr = row(e);
      tr.querySelector("td.name a").textContent = e.path;
      return tr;
    }));
    $("grid").replaceChildren(...r.results.map(tile));
    $("more").hidden = true;
    $("empty").hidden = true;
    say(`${r.results.length} found${r.truncated ? " (stopped early: refine the search)" : ""}`);
  } catch (e) { fail(e); }
});

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
  const to = await ask("New name, or a path to move it to", e.path);
  if (!to || to === e.path) return;
  const target = to.startsWith("/") ? to : join(parentOf(e.path), to);
  try {
    await api.rename(e.path, target);
    await load(false);
    say(`Renamed to ${target}`);
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
        const to = await ask(`${i.path} exists again. Restore it as:`, i.path + " (restored)");
        if (to == null) return;
        try { await api.restoreTrash(i.id, to); } catch (e2) { $("trash-summary").textContent = e2.message; return; }
      }
      await showTrash();
      await load(false);
    };
    const drop = async () => {
      if (!(await ask(`Delete ${i.path} for good? This cannot be undone.`, "", { input: false, ok: "Delete forever" }))) return;
      await api.removeTrash(i.id);
      await showTrash();
    };
    return tableRow([i.path, i.kind === "dir" ? "folder" : i.kind, size(i.size), when],
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
function uploadItem(label) {
  $("uploads").hidden = false;
  const li = document.createElement("li");
  li.innerHTML = `<div></div><progress max="1" value="0"></progress>`;
  li.firstChild.textContent = label;
  $("upload-list").prepend(li);
  return li;
}

// files: [{file, path}] with path relative to the current folder.
// Files from this size on go over tus in pieces (resumable); smaller ones in one PUT.
const RESUMABLE_FROM = 16 << 20;
// Uploads running at once.
const PARALLEL_UPLOADS = 3;

async function uploadOne(base, { file, path }) {
  const li = uploadItem(path);
  const bar = li.querySelector("progress");
  const progress = (sent, total) => { bar.max = total || 1; bar.value = sent; };
  try {
    if (file.size >= RESUMABLE_FROM) {
      await api.resumableUpload(join(base, path), file, progress,
        (offset) => {
          li.dataset.resumed = offset;
          li.firstChild.textContent = `${path} — resumed from ${size(offset)}`;
        });
    } else {
      await api.upload(join(base, path), file, progress);
    }
    bar.max = 1; bar.value = 1;
    li.firstChild.textContent = li.dataset.resumed ? `${path} — done (resumed)` : `${path} — done`;
    return true;
  } catch (e) {
    li.classList.add("failed");
    li.firstChild.textContent = `${path} — ${e.message}`;
    if (e.status === 401) showLogin();
    return false;
  }
}

$("uploads-close").addEventListener("click", () => {
  $("uploads").hidden = true;
  for (const li of [...$("upload-list").children]) if (li.querySelector("progress")?.value === li.querySelector("progress")?.max) li.remove();
});

async function uploadAll(files) {
  const base = state.path;
  let ok = 0;
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      if (await uploadOne(base, files[next++])) ok++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_UPLOADS, files.length) }, worker));
  say(`${ok} of ${files.length} uploaded`, ok !== files.length);
  if (state.path === base) await load(false).catch(fail);
}

$("upload-files").addEventListener("change", (ev) => {
  const files = [...ev.target.files].map((file) => ({ file, path: file.name }));
  ev.target.value = "";
  uploadAll(files);
});
$("upload-folder").addEventListener("change", (ev) => {
  const files = [...ev.target.files].map((file) => ({ file, path: file.webkitRelativePath || file.name }));
  ev.target.value = "";
  uploadAll(files);
});

// Walk dropped folders (FileSystemEntry API) into [{file, path}].
async function collect(entry, prefix, out) {
  if (entry.isFile) {
    const file = await new Promise((res, rej) => entry.file(res, rej));
    out.push({ file, path: prefix + entry.name });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
      if (!batch.length) break;
      for (const child of batch) await collect(child, prefix + entry.name + "/", out);
    }
  }
}

const zone = $("drop-zone");
let depth = 0;
zone.addEventListener("dragenter", (ev) => { ev.preventDefault(); depth++; zone.classList.add("dragging"); });
zone.addEventListener("dragleave", () => { if (--depth <= 0) { depth = 0; zone.classList.remove("dragging"); } });
zone.addEventListener("dragover", (ev) => ev.preventDefault());
zone.addEventListener("drop", async (ev) => {
  ev.preventDefault();
  depth = 0;
  zone.classList.remove("dragging");
  const items = [...(ev.dataTransfer.items || [])];
  const entries = items.map((i) => i.webkitGetAsEntry && i.webkitGetAsEntry()).filter(Boolean);
  const files = [];
  if (entries.length) {
    for (const e of entries) await collect(e, "", files);
  } else {
    for (const f of ev.dataTransfer.files) files.push({ file: f, path: f.name });
  }
  if (files.length) uploadAll(files);
});

// ------------------------------------------------------------------ sessions
async function showSessions() {
  const list = await api.sessions();
  const when = (t) => new Date(t * 1000).toLocaleString();
  $("session-list").replaceChildren(...list.map((s) => tableRow(
    [when(s.opened), when(s.last_used), s.address || "", s.agent],
    [s.current ? "this one" : button("Sign out", async () => { await api.endSessions(s.id); showSessions(); })],
  )));
}

$("sessions-button").addEventListener("click", async () => {
  $("sessions").showModal();
  try { await showSessions(); } catch (e) { $("session-list").textContent = e.message; }
});

$("end-all").addEventListener("click", async () => {
  try { await api.endSessions(); } catch (_) { /* signed out either way */ }
  $("sessions").close();
  showLogin();
});

$("own-password").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("own-message").textContent = "";
  try {
    await api.setPassword({ current: $("own-current").value, password: $("own-new").value });
    $("own-current").value = $("own-new").value = "";
    $("own-message").textContent = "Changed; your other sessions are signed out.";
    await showSessions();
  } catch (e) { $("own-message").textContent = e.message; }
});

// ------------------------------------------------------------------ accounts (admins)
async function showAccounts() {
  const list = await api.users();
  $("account-list").replaceChildren(...list.map((u) => {
    const setPassword = async () => {
      const password = await ask(`New password for ${u.name} (8 or more):`, "");
      if (password == null) return;
      try {
        await api.setPassword({ name: u.name, password });
        $("accounts-message").textContent = `Password of ${u.name} set; their sessions are signed out.`;
      } catch (e) { $("accounts-message").textContent = e.message; }
    };
    const remove = async () => {
      if (!(await ask(`Delete the account ${u.name}? Its home folder stays.`, "", { input: false, ok: "Delete" }))) return;
      try {
        await api.deleteUser(u.name);
        await showAccounts();
      } catch (e) { $("accounts-message").textContent = e.message; }
    };
    return tableRow([u.name, u.admin ? "admin" : "user", u.quota == null ? "none" : size(u.quota)],
      [button("Set password", setPassword), " ", button("Delete", remove)]);
  }));
}

$("accounts-button").addEventListener("click", async () => {
  $("accounts-message").textContent = "";
  $("accounts").showModal();
  try { await showAccounts(); } catch (e) { $("accounts-message").textContent = e.message; }
});

$("add-account").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const gib = $("new-quota").value;
  const quota = gib === "" ? null : Math.round(Number(gib) * 2 ** 30);
  try {
    await api.addUser($("new-name").value.trim(), $("new-password").value, $("new-admin").checked, quota);
    $("accounts-message").textContent = `Account ${$("new-name").value.trim()} added.`;
    $("new-name").value = $("new-password").value = $("new-quota").value = "";
    $("new-admin").checked = false;
    await showAccounts();
  } catch (e) { $("accounts-message").textContent = e.message; }
});

// ------------------------------------------------------------------ health
async function refreshHealthDot() {
  try {
    const s = await api.status();
    const down = s.backends.filter((b) => !b.up).length;
    $("health-dot").className = "dot " + (down ? "bad" : "good");
  } catch (_) { $("health-dot").className = "dot"; }
}

$("health-button").addEventListener("click", async () => {
  const body = $("health-body");
  body.textContent = "Loading…";
  $("health").showModal();
  try {
    const s = await api.status();
    const up = s.backends.filter((b) => b.up).length;
    const local = s.namespaces.reduce((a, n) => a + n.local_segments, 0);
    const off = s.namespaces.reduce((a, n) => a + n.offloaded_segments, 0);
    const evicted = s.namespaces.reduce((a, n) => a + n.evicted_segments, 0);
    const limit = s.cache.limit ? size(s.cache.limit) : "no limit";
    const r = s.repair;
    body.innerHTML = `
      <div class="health-grid">
        <div class="card"><div>Backends up</div><div class="big" id="health-backends">${up} / ${s.backends.length}</div></div>
        <div class="card"><div>Erasure code (k+m)</div><div class="big">${escape(s.code)}</div></div>
        <div class="card"><div>Segments local / offloaded / evicted</div><div class="big">${local} / ${off} / ${evicted}</div></div>
        <div class="card"><div>Cache</div><div class="big">${size(s.cache.bytes)}</div><div>of ${limit}</div></div>
        <div class="card"><div>Offload</div><div class="big">${s.offload.pending} pending</div><div>${size(s.offload.bytes_uploaded)} uploaded, ${s.offload.upload_failures} failures</div></div>
        <div class="card"><div>Repair</div><div class="big">${r.repaired} repaired</div><div>${r.failures} failed, ${r.queue} queued, ${r.scrubs} scrubs</div></div>
      </div>
      <table><thead><tr><th>Role</th><th>Backend</th><th>Namespace</th><th>State</th></tr></thead><tbody>
      ${s.backends.map((b) => `<tr><td>${escape(b.role)}</td><td>${escape(b.address)}</td><td>${escape(b.namespace || "default")}</td>
        <td class="${b.up ? "up" : "down"}">${b.up ? "up" : "down"}</td></tr>`).join("")}
      </tbody></table>
      ${s.offload.last_error ? `<p class="error">Last offload error: ${escape(s.offload.last_error)}</p>` : ""}`;
  } catch (e) {
    body.textContent = e.message;
  }
});

// ------------------------------------------------------------------ start
showView();
api.session().then(showMain, showLogin);
