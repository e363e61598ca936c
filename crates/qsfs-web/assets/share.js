// The page a share link's recipient opens (`/s/ID`): a password if the link has one, then
// the shared file (preview, download), the shared folder (browse, download, zip) or a file
// drop (send files, nothing shown of what is there). No account, no session: the link's
// own API under /s/ID/api/.
const $ = (id) => document.getElementById(id);
const base = location.pathname.replace(/\/+$/, "");
const PAGE = 200;
const IMAGE_EXT = new Set(["png", "jpg", "jpeg", "gif", "webp", "bmp", "ico"]);
const ext = (name) => (name.includes(".") ? name.split(".").pop().toLowerCase() : "");

function size(n) {
  if (n < 1024) return n + " B";
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let u = -1;
  do { n /= 1024; u++; } while (n >= 1024 && u < units.length - 1);
  return n.toFixed(n < 10 ? 1 : 0) + " " + units[u];
}

async function call(method, path, { query, json } = {}) {
  const u = new URL(base + "/api/" + path, location.origin);
  for (const [k, v] of Object.entries(query || {})) u.searchParams.set(k, v);
  const opts = { method, credentials: "same-origin" };
  if (json !== undefined) {
    opts.headers = { "Content-Type": "application/json" };
    opts.body = JSON.stringify(json);
  }
  const res = await fetch(u, opts);
  if (!res.ok) {
    let message = res.statusText;
    try { message = (await res.json()).error || message; } catch (_) { /* not JSON */ }
    const e = new Error(message);
    e.status = res.status;
    throw e;
  }
  return res.json();
}

function url(path, query) {
  const u = new URL(base + "/api/" + path, location.origin);
  for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
  return u.pathname + u.search;
}

function show(id) {
  for (const s of ["share-error", "unlock-form", "share-file", "share-folder", "share-drop"]) $(s).hidden = s !== id;
}

function failed(e) {
  $("share-error-text").textContent = e.message || String(e);
  show("share-error");
}

async function start() {
  let info;
  try { info = await call("GET", "info"); } catch (e) { return failed(e); }
  if (info.needs_password) {
    show("unlock-form");
    $("unlock-password").focus();
    return;
  }
  const until = info.expires ? " · until " + new Date(info.expires * 1000).toLocaleString() : "";
  $("share-title").textContent = `${info.name}, shared by ${info.owner}${until}`;
  if (info.kind === "drop") return showDrop(info);
  if (!info.dir) return showFile(info);
  show("share-folder");
  $("zip").href = url("zip", { path: "/" });
  // A folder link is also a read-only WebDAV folder (file managers, rclone), unless it
  // counts its uses.
  if (!info.max_uses) {
    const dav = Object.assign(document.createElement("code"), { id: "dav-address", textContent: `${location.origin}${base}/dav/` });
    $("dav-about").replaceChildren("Also open it in a file manager (WebDAV, read-only): ", dav, info.has_password ? " with this link's password." : ".");
  }
  await open("/");
}

$("unlock-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try {
    await call("POST", "unlock", { json: { password: $("unlock-password").value } });
    await start();
  } catch (e) {
    $("unlock-error").textContent = e.message;
  }
});

function showFile(info) {
  show("share-file");
  $("file-name").textContent = info.name;
  $("file-size").textContent = info.size == null ? "" : size(info.size);
  $("file-download").href = url("file", { path: "/", download: "1" });
  if (IMAGE_EXT.has(ext(info.name))) {
    const img = document.createElement("img");
    img.src = url("file", { path: "/" });
    img.alt = info.name;
    img.style.maxWidth = "100%";
    $("file-preview").replaceChildren(img);
  }
}

const folder = { path: "/", shown: 0, total: 0 };

function crumbs() {
  const nav = $("crumbs");
  nav.replaceChildren();
  const parts = folder.path.split("/").filter(Boolean);
  const add = (label, path) => {
    const a = document.createElement("a");
    a.textContent = label;
    a.href = "#";
    a.addEventListener("click", (ev) => { ev.preventDefault(); open(path); });
    nav.append(a);
  };
  add("shared folder", "/");
  let p = "";
  for (const part of parts) {
    p += "/" + part;
    const sep = document.createElement("span");
    sep.className = "sep";
    sep.textContent = "/";
    nav.append(sep);
    add(part, p);
  }
}

function row(e) {
  const tr = document.createElement("tr");
  const name = document.createElement("td");
  name.className = "name";
  const a = document.createElement("a");
  a.textContent = e.name + (e.kind === "dir" ? "/" : "");
  if (e.kind === "dir") {
    a.href = "#";
    a.addEventListener("click", (ev) => { ev.preventDefault(); open(e.path); });
  } else {
    a.href = url("file", { path: e.path });
    a.target = "_blank";
    a.rel = "noopener";
  }
  name.append(a);
  const sz = document.createElement("td");
  sz.className = "num";
  sz.textContent = e.kind === "dir" ? "" : size(e.size);
  const when = document.createElement("td");
  when.textContent = new Date(e.mtime).toLocaleString();
  const act = document.createElement("td");
  act.className = "actions";
  const dl = document.createElement("a");
  dl.className = "button";
  dl.textContent = "Download";
  dl.href = e.kind === "dir" ? url("zip", { path: e.path }) : url("file", { path: e.path, download: "1" });
  act.append(dl);
  tr.append(name, sz, when, act);
  return tr;
}

async function load(append) {
  try {
    const page = await call("GET", "list", { query: { path: folder.path, offset: append ? folder.shown : 0, limit: PAGE } });
    if (!append) $("entries").replaceChildren();
    for (const e of page.entries) $("entries").append(row(e));
    folder.shown = (append ? folder.shown : 0) + page.entries.length;
    folder.total = page.total;
    $("more").hidden = folder.shown >= folder.total;
    $("empty").hidden = folder.total > 0;
  } catch (e) {
    $("message").textContent = e.message;
  }
}

async function open(path) {
  folder.path = path;
  crumbs();
  await load(false);
}
$("more").addEventListener("click", () => load(true));

function showDrop(info) {
  show("share-drop");
  const left = info.max_uses ? ` Up to ${info.max_uses - info.uses} more files.` : "";
  $("drop-about").textContent = `Files you send go to ${info.owner}'s folder "${info.name}". You cannot see what is there.${left}`;
}

function send(file, li) {
  return new Promise((resolve) => {
    const bar = document.createElement("progress");
    bar.max = 1;
    bar.value = 0;
    li.append(bar);
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", url("file", { name: file.name }));
    xhr.upload.onprogress = (e) => { if (e.total) bar.value = e.loaded / e.total; };
    xhr.onload = () => {
      bar.remove();
      if (xhr.status >= 200 && xhr.status < 300) {
        li.textContent = `${file.name}: sent as ${JSON.parse(xhr.responseText).path.replace(/^\//, "")}`;
      } else {
        let msg = xhr.statusText;
        try { msg = JSON.parse(xhr.responseText).error; } catch (_) { /* keep */ }
        li.textContent = `${file.name}: ${msg}`;
        li.className = "failed error";
      }
      resolve();
    };
    xhr.onerror = () => { li.textContent = `${file.name}: network error`; li.className = "failed error"; resolve(); };
    xhr.send(file);
  });
}

$("drop-files").addEventListener("change", async (ev) => {
  const files = [...ev.target.files];
  ev.target.value = "";
  for (const f of files) {
    const li = document.createElement("li");
    li.textContent = f.name + " ";
    $("drop-list").append(li);
    await send(f, li);
  }
});

start();
