// Uploads of the drive page: files and folders from the pickers and drag-and-drop, three
// at a time; large files resumable over tus; a taken name asks (replace, keep both, skip;
// once for all if wished); a progress panel that can be closed.
import { api } from "/assets/api.js";
import { size, choose } from "/assets/ui.js";

const $ = (id) => document.getElementById(id);
// What the page lends: its state, listing and messages, path helpers.
let page = null;

export function initUploads(p) {
  page = p;
}

const join = (dir, name) => page.join(dir, name);
const parentOf = (p) => page.parentOf(p);
const nameOf = (p) => page.nameOf(p);

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

// `name (2).ext`, `name (3).ext`, ... of a path.
function numbered(path, n) {
  const name = nameOf(path);
  const dot = name.lastIndexOf(".");
  const [stem, ending] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
  return join(parentOf(path), `${stem} (${n})${ending}`);
}

// What to do when an upload's name is taken: asked once per upload (one question at a
// time, uploads run side by side), or once for all when the person says so.
function onConflict(batch, path) {
  const turn = batch.turn.then(async () => {
    if (batch.answer) return batch.answer;
    const { value, all } = await choose(`${path} exists already.`,
      [["replace", "Replace it"], ["both", "Keep both"], ["skip", "Skip"]], { forAll: batch.size > 1 });
    if (all) batch.answer = value;
    return value || "skip";
  });
  batch.turn = turn.catch(() => {});
  return turn;
}

async function uploadOne(base, { file, path }, batch) {
  const li = uploadItem(path);
  const bar = li.querySelector("progress");
  const progress = (sent, total) => { bar.max = total || 1; bar.value = sent; };
  const send = (target, overwrite) => (file.size >= RESUMABLE_FROM
    ? api.resumableUpload(target, file, progress, (offset) => {
      li.dataset.resumed = offset;
      li.firstChild.textContent = `${path} — resumed from ${size(offset)}`;
    }, overwrite)
    : api.upload(target, file, progress, overwrite));
  const target = join(base, path);
  try {
    let stored = target;
    try {
      await send(target, false);
    } catch (e) {
      if (e.status !== 409) throw e;
      const answer = await onConflict(batch, path);
      if (answer === "skip") {
        li.firstChild.textContent = `${path} — skipped (exists)`;
        bar.remove();
        return true;
      }
      if (answer === "replace") await send(target, true);
      else {
        for (let n = 2; ; n++) {
          stored = numbered(target, n);
          try { await send(stored, false); break; } catch (e2) { if (e2.status !== 409 || n > 99) throw e2; }
        }
      }
    }
    bar.max = 1; bar.value = 1;
    const as = stored === target ? "" : ` as ${nameOf(stored)}`;
    li.firstChild.textContent = `${path} — done${li.dataset.resumed ? " (resumed)" : ""}${as}`;
    return true;
  } catch (e) {
    li.classList.add("failed");
    li.firstChild.textContent = `${path} — ${e.message}`;
    if (e.status === 401) page.showLogin();
    return false;
  }
}

$("uploads-close").addEventListener("click", () => {
  $("uploads").hidden = true;
  for (const li of [...$("upload-list").children]) if (li.querySelector("progress")?.value === li.querySelector("progress")?.max) li.remove();
});

async function uploadAll(files) {
  const base = page.state.path;
  let ok = 0;
  let next = 0;
  const batch = { size: files.length, answer: null, turn: Promise.resolve() };
  const worker = async () => {
    while (next < files.length) {
      if (await uploadOne(base, files[next++], batch)) ok++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL_UPLOADS, files.length) }, worker));
  page.say(`${ok} of ${files.length} uploaded`, ok !== files.length);
  if (page.state.path === base) await page.load(false).catch(page.fail);
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

