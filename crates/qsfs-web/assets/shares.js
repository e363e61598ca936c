// Share links of the drive page: make one for an entry (read or file drop, expiry,
// password, most uses), copy it, list one's links (an admin: everyone's) and revoke them.
import { api } from "/assets/api.js";
import { size, tableRow, button } from "/assets/ui.js";

const $ = (id) => document.getElementById(id);
const linkOf = (s) => location.origin + s.url;
let target = null;

export function shareEntry(e) {
  target = e;
  $("share-what").textContent = `Share ${e.name}`;
  $("share-kind").value = "read";
  $("share-kind").disabled = e.kind !== "dir"; // a drop is made for a folder
  $("share-password").value = $("share-max").value = "";
  $("share-result").hidden = true;
  $("share-message").textContent = e.kind === "dir" ? "" : `${size(e.size)}`;
  $("share-dialog").showModal();
}

$("share-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const days = $("share-days").value;
  const max = $("share-max").value;
  const link = {
    path: target.path,
    kind: $("share-kind").value,
    expires_days: days === "" || Number(days) === 0 ? null : Number(days),
    password: $("share-password").value || null,
    max_uses: max === "" ? null : Number(max),
  };
  try {
    const s = await api.share(link);
    $("share-url").value = linkOf(s);
    $("share-result").hidden = false;
    $("share-url").select();
    $("share-message").textContent = s.expires ? `Works until ${new Date(s.expires * 1000).toLocaleString()}.` : "Works until you revoke it.";
  } catch (e) { $("share-message").textContent = e.message; }
});

$("share-copy").addEventListener("click", async () => {
  try {
    await navigator.clipboard.writeText($("share-url").value);
    $("share-message").textContent = "Copied.";
  } catch (_) {
    $("share-url").select();
    $("share-message").textContent = "Select the link and copy it.";
  }
});

export async function showShares() {
  $("shares-message").textContent = "";
  $("shares").showModal();
  const list = await api.shares();
  if (!list.length) $("shares-message").textContent = "No links yet: use Share on a file or folder.";
  $("share-list").replaceChildren(...list.map((s) => {
    const a = document.createElement("a");
    a.href = s.url;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    a.textContent = "Open";
    const copy = button("Copy", () => navigator.clipboard.writeText(linkOf(s)).then(() => {
      $("shares-message").textContent = `Copied the link to ${s.path}.`;
    }, () => { $("shares-message").textContent = linkOf(s); }));
    const revoke = button("Revoke", async () => {
      try {
        await api.revokeShare(s.id);
        await showShares();
      } catch (e) { $("shares-message").textContent = e.message; }
    }, "revoke");
    const kind = s.kind === "drop" ? "upload" : "view" + (s.password ? " (password)" : "");
    const uses = s.uses + (s.max_uses ? ` of ${s.max_uses}` : "");
    const expires = s.expires ? new Date(s.expires * 1000).toLocaleString() : "never";
    return tableRow([s.path, s.owner, kind, uses, expires, s.closed || "open"], [a, " ", copy, " ", revoke]);
  }));
}
