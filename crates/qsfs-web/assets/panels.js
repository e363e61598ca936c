// The drive page's panels about the person and the drive rather than files: sessions, one's
// own password and app passwords (WebDAV), accounts (admins), storage health (admins).
import { api } from "/assets/api.js";
import { escape } from "/assets/highlight.js";
import { size, tableRow, button, ask } from "/assets/ui.js";

const $ = (id) => document.getElementById(id);
// What the page lends: the sign-in view.
let page = null;

export function initPanels(p) {
  page = p;
}

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
  await showAppPasswords();
});

// ------------------------------------------- app passwords (WebDAV) and S3 access keys
// One mechanism for both: a list with revoke buttons, and a form that makes one and shows
// its secret once. `id` is the prefix of the elements' ids in index.html.
const keyRings = {
  "app-password": {
    list: () => api.appPasswords(),
    make: (label) => api.makeAppPassword(label),
    revoke: (id) => api.revokeAppPassword(id),
    noun: "app password",
    columns: (p) => [p.label],
    shown: (made) => ["Shown once — type it into the device now: ", code("app-password-new", made.password)],
  },
  "access-key": {
    list: () => api.accessKeys(),
    make: (label) => api.makeAccessKey(label),
    revoke: (id) => api.revokeAccessKey(id),
    noun: "access key",
    columns: (k) => [k.id, k.label],
    shown: (made) => ["Access key id ", code("access-key-id", made.id), " secret ", code("access-key-secret", made.secret), " (the secret is shown once)"],
  },
};

function code(id, text) {
  return Object.assign(document.createElement("code"), { id, textContent: text });
}

async function showKeys(id) {
  const ring = keyRings[id];
  const when = (t) => (t ? new Date(t * 1000).toLocaleString() : "not since qsfs started");
  try {
    const list = await ring.list();
    $(`${id}-list`).replaceChildren(...list.map((k) => tableRow(
      [...ring.columns(k), when(k.created), when(k.last_used)],
      [button("Revoke", async () => {
        if (!(await ask(`Revoke the ${ring.noun} for “${k.label}”? What uses it is cut off.`, "", { input: false, ok: "Revoke" }))) return;
        await ring.revoke(k.id);
        showKeys(id);
      })],
    )));
  } catch (e) {
    $(`${id}-list`).replaceChildren();
    $(`${id}-message`).textContent = e.message;
  }
}

async function showAppPasswords() {
  $("dav-address").textContent = `${location.origin}/dav/`;
  await showKeys("app-password");
  await showKeys("access-key");
}

for (const id of Object.keys(keyRings)) {
  $(`${id}-form`).addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const msg = $(`${id}-message`);
    msg.textContent = "";
    try {
      const made = await keyRings[id].make($(`${id}-label`).value);
      $(`${id}-label`).value = "";
      msg.replaceChildren(...keyRings[id].shown(made));
      await showKeys(id);
    } catch (e) { msg.textContent = e.message; }
  });
}

$("end-all").addEventListener("click", async () => {
  try { await api.endSessions(); } catch (_) { /* signed out either way */ }
  $("sessions").close();
  page.showLogin();
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
export async function refreshHealthDot() {
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

