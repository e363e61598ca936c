// Browser test of the qsfs web file browser, through Debian's chromium and playwright-core:
// log in, create a folder, upload by drag-and-drop, see the files, preview an image, edit a
// text file and save, reload and see the change, detect a conflicting edit, rename, delete,
// open the health panel, accounts, sessions, share links (read with a password, a file
// drop, revocation; the recipient in a fresh browser), an upload resumed after a page
// reload, the grid's thumbnails, selection, upload conflicts, a shared folder, an app
// password used over WebDAV then revoked. Screenshots
// go to $ARTIFACTS. Run by run.sh beside this file.
import { chromium } from "playwright-core";
import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const url = process.env.QSFS_URL;
const token = process.env.QSFS_TOKEN;
const mount = process.env.QSFS_MOUNT;
const out = process.env.ARTIFACTS || "browser-artifacts";
assert.ok(url && token && mount, "QSFS_URL, QSFS_TOKEN and QSFS_MOUNT are needed");
fs.mkdirSync(out, { recursive: true });

// A 1x1 PNG.
const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

const profile = fs.mkdtempSync(path.join(os.tmpdir(), "qsfs-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
context.setDefaultTimeout(20_000);
const page = context.pages()[0] || (await context.newPage());
const errors = [];
page.on("pageerror", (e) => errors.push(String(e)));
let shot = 0;
const snap = async (name) => page.screenshot({ path: path.join(out, `${String(++shot).padStart(2, "0")}-${name}.png`), fullPage: true });
const row = (name) => page.locator(`#entries tr[data-name="${name}"]`);
const onDisk = (p) => path.join(mount, p);

async function answer(text) {
  await page.locator("#ask").waitFor({ state: "visible" });
  if (text !== undefined) await page.fill("#ask-input", text);
  await page.click("#ask-ok");
  await page.locator("#ask").waitFor({ state: "hidden" });
}

try {
  // Log in (a wrong token first).
  await page.goto(url);
  await page.locator("#login-view").waitFor({ state: "visible" });
  await page.fill("#token", "not-the-token");
  await page.click("#login-form button");
  await page.locator("#login-error", { hasText: "wrong user name, password or token" }).waitFor();
  await snap("login-refused");
  await page.fill("#token", token);
  await page.click("#login-form button");
  await page.locator("#main-view").waitFor({ state: "visible" });

  // Create a folder and go in.
  await page.click("#new-folder");
  await answer("docs");
  await row("docs").waitFor();
  assert.ok(fs.statSync(onDisk("docs")).isDirectory(), "the folder exists in the mount");
  await row("docs").locator("td.name a").click();
  await page.locator("#crumbs a", { hasText: "docs" }).waitFor();

  // Upload two files by drag-and-drop.
  const dt = await page.evaluateHandle((png) => {
    const d = new DataTransfer();
    d.items.add(new File(["# Hello\n\nfrom the browser\n\n![pic](pixel.png) [up](../)\n"], "hello.md", { type: "text/markdown" }));
    const bin = Uint8Array.from(atob(png), (c) => c.charCodeAt(0));
    d.items.add(new File([bin], "pixel.png", { type: "image/png" }));
    d.items.add(new File([bin], "pixel2.png", { type: "image/png" }));
    return d;
  }, PNG);
  for (const type of ["dragenter", "dragover", "drop"]) {
    await page.dispatchEvent("#drop-zone", type, { dataTransfer: dt });
  }
  await row("hello.md").waitFor();
  await row("pixel.png").waitFor();
  await page.locator("#upload-list li", { hasText: "pixel.png — done" }).waitFor();
  await snap("uploaded");
  assert.equal(fs.readFileSync(onDisk("docs/hello.md"), "utf8"), "# Hello\n\nfrom the browser\n\n![pic](pixel.png) [up](../)\n");
  assert.equal(fs.readFileSync(onDisk("docs/pixel.png")).toString("base64"), PNG);

  // A large file goes over tus in pieces of 8 MiB; the page is reloaded in the middle of
  // the upload (its second piece cut off), the same file dropped again resumes from the
  // offset the server kept.
  const BIG = 20 << 20;
  const makeBig = (n) => {
    const bytes = new Uint8Array(n);
    for (let i = 0; i < n; i++) bytes[i] = (i * 7) % 251;
    const d = new DataTransfer();
    d.items.add(new File([bytes], "big.bin", { lastModified: 1234000 }));
    window.bigDrop = d;
  };
  const dropBig = async () => {
    await page.evaluate(makeBig, BIG);
    const d = await page.evaluateHandle(() => window.bigDrop);
    for (const type of ["dragenter", "dragover", "drop"]) await page.dispatchEvent("#drop-zone", type, { dataTransfer: d });
  };
  let patches = 0;
  let secondPiece;
  const cutOff = new Promise((resolve) => { secondPiece = resolve; });
  await page.route("**/api/tus/*", async (route) => {
    if (route.request().method() !== "PATCH" || ++patches === 1) return route.continue();
    await route.abort();
    secondPiece();
  });
  await dropBig();
  await cutOff;
  await page.unroute("**/api/tus/*");
  await page.reload();
  await row("pixel.png").waitFor();
  await dropBig();
  await page.locator("#upload-list li", { hasText: "big.bin — done (resumed)" }).waitFor();
  assert.equal(Number(await page.getAttribute("#upload-list li[data-resumed]", "data-resumed")), 8 << 20);
  const big = fs.readFileSync(onDisk("docs/big.bin"));
  assert.equal(big.length, BIG);
  assert.ok(big.every((b, i) => b === (i * 7) % 251), "the resumed file is byte-exact");
  await page.click("#uploads-close");
  assert.ok(await page.locator("#uploads").isHidden(), "the uploads panel closes");

  // The folder downloads as a zip, with the page's session; files answer range requests.
  const zipHref = await page.getAttribute("#download-folder", "href");
  const zip = await page.request.get(new URL(zipHref, url).href);
  assert.equal(zip.status(), 200);
  assert.equal((await zip.body()).subarray(0, 2).toString(), "PK");
  const ranged = await page.request.get(new URL("/api/file?path=/docs/hello.md", url).href, { headers: { Range: "bytes=2-6" } });
  assert.equal(ranged.status(), 206);
  assert.equal(await ranged.text(), "Hello");

  // Preview the image.
  await row("pixel.png").locator("td.name a").click();
  await page.waitForFunction(() => document.querySelector("#preview-body img")?.naturalWidth === 1);
  await snap("image-preview");
  // The lightbox steps to the next picture of the folder (arrow key).
  await page.keyboard.press("ArrowRight");
  await page.locator("#preview-title", { hasText: "pixel2.png (2 of 2)" }).waitFor();
  assert.ok(await page.locator("#preview-next").isDisabled(), "the last picture");
  await page.click("#preview button.close");

  // The grid view shows thumbnails; the choice is remembered.
  await page.click("#view-toggle");
  await page.waitForFunction(() => document.querySelector('#grid .tile[data-name="pixel.png"] img')?.naturalWidth === 1);
  await snap("grid");
  await page.click("#view-toggle");
  await row("pixel.png").waitFor({ state: "visible" });

  // A phone-sized screen: nothing falls off the right edge, actions are a menu.
  await page.setViewportSize({ width: 390, height: 800 });
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= 390), "no sideways scrolling at 390 px");
  await row("pixel.png").locator("button.more").click();
  await row("pixel.png").locator("button.rename").waitFor({ state: "visible" });
  await snap("phone");
  await row("pixel.png").locator("button.more").click();
  await page.setViewportSize({ width: 1280, height: 720 });
  // Select two pictures: download them as one zip, copy them to the top folder.
  await row("pixel.png").locator("td.pick input").check();
  await row("pixel2.png").locator("td.pick input").check();
  await page.locator("#bulk-count", { hasText: "2 selected" }).waitFor();
  const picked = await page.request.get(new URL(await page.getAttribute("#bulk-download", "href"), url).href);
  assert.equal((await picked.body()).subarray(0, 2).toString(), "PK");
  await page.click("#bulk-copy");
  await answer("/");
  await page.locator("#message", { hasText: "Copied 2 of 2" }).waitFor();
  assert.equal(fs.readFileSync(onDisk("pixel2.png")).toString("base64"), PNG);
  // An upload over a taken name asks; keeping both stores it under a new name.
  const again = await page.evaluateHandle((png) => {
    const d = new DataTransfer();
    d.items.add(new File([Uint8Array.from(atob(png), (c) => c.charCodeAt(0))], "pixel.png", { type: "image/png" }));
    return d;
  }, PNG);
  for (const type of ["dragenter", "dragover", "drop"]) {
    await page.dispatchEvent("#drop-zone", type, { dataTransfer: again });
  }
  await page.locator("#choose", { hasText: "exists already" }).waitFor();
  await snap("upload-conflict");
  await page.click("#choose button.answer-both");
  await page.locator("#upload-list li", { hasText: "as pixel (2).png" }).waitFor();
  assert.ok(fs.existsSync(onDisk("docs/pixel (2).png")));
  // A name is a real link: it opens the file in a new tab.
  assert.match(await row("pixel.png").locator("td.name a").getAttribute("href"), /\/api\/file\?path=%2Fdocs%2Fpixel\.png/);

  // Markdown preview, edit with the live preview, save.
  await row("hello.md").locator("td.name a").click();
  await page.locator("#preview-body h1", { hasText: "Hello" }).waitFor();
  // Its relative picture loads from the drive.
  await page.waitForFunction(() => document.querySelector("#preview-body .markdown img")?.naturalWidth === 1);
  await page.click("#preview-edit");
  await page.locator("#editor").waitFor({ state: "visible" });
  await page.fill("#editor-text", "# Hello\n\nedited **in the page**\n");
  await page.locator("#editor-preview strong", { hasText: "in the page" }).waitFor();
  await page.click("#editor-save");
  await page.locator("#editor-state", { hasText: "Saved" }).waitFor();
  await snap("edited");
  await page.click("#editor button.close");
  assert.equal(fs.readFileSync(onDisk("docs/hello.md"), "utf8"), "# Hello\n\nedited **in the page**\n");

  // Reload: still logged in, same folder, the change is there.
  await page.reload();
  await row("hello.md").waitFor();
  await row("hello.md").locator("td.name a").click();
  await page.locator("#preview-body strong", { hasText: "in the page" }).waitFor();
  await snap("after-reload");

  // A conflicting change made elsewhere is detected, not overwritten.
  await page.click("#preview-edit");
  await page.locator("#editor").waitFor({ state: "visible" });
  fs.writeFileSync(onDisk("docs/hello.md"), "changed behind the page\n");
  await page.fill("#editor-text", "my stale version\n");
  await page.click("#editor-save");
  await page.locator("#editor-state", { hasText: "changed since you opened it" }).waitFor();
  await page.locator("#ask").waitFor({ state: "visible" });
  await snap("conflict");
  await page.click("#ask-cancel");
  await page.click("#editor button.close");
  assert.equal(fs.readFileSync(onDisk("docs/hello.md"), "utf8"), "changed behind the page\n");

  // Rename, then delete with confirmation.
  await row("hello.md").locator("button.rename").click();
  await answer("renamed.md");
  await row("renamed.md").waitFor();
  assert.ok(fs.existsSync(onDisk("docs/renamed.md")) && !fs.existsSync(onDisk("docs/hello.md")));
  await row("renamed.md").locator("button.delete").click();
  await answer();
  await row("renamed.md").waitFor({ state: "detached" });
  assert.ok(!fs.existsSync(onDisk("docs/renamed.md")));
  await snap("deleted");

  // A name that is not UTF-8 (Latin-1 "café.txt"): opened, renamed, from the page.
  const latin1 = Buffer.concat([Buffer.from(onDisk("docs/caf")), Buffer.from([0xe9]), Buffer.from(".txt")]);
  fs.writeFileSync(latin1, "bytes of another age\n");
  await page.click("#crumbs a[data-path='/docs']");
  await row("caf\uFFFD.txt").locator("td.name a").click();
  await page.locator("#preview-body pre", { hasText: "bytes of another age" }).waitFor();
  await page.click("#preview button.close");
  await row("caf\uFFFD.txt").locator("button.rename").click();
  await answer("cafe.txt");
  await row("cafe.txt").waitFor();
  assert.ok(!fs.existsSync(latin1) && fs.existsSync(onDisk("docs/cafe.txt")));

  // The trash: the deleted file is there, and comes back where it was.
  await page.click("#trash-button");
  const trashed = page.locator("#trash-list tr", { hasText: "/docs/renamed.md" });
  await trashed.waitFor();
  await snap("trash");
  await trashed.locator("button.restore").click();
  await trashed.waitFor({ state: "detached" });
  await page.click("#trash button.close");
  await row("renamed.md").waitFor();
  assert.equal(fs.readFileSync(onDisk("docs/renamed.md"), "utf8"), "changed behind the page\n");
  await row("renamed.md").locator("button.delete").click();
  await answer();
  await row("renamed.md").waitFor({ state: "detached" });
  await page.click("#trash-button");
  await trashed.waitFor();
  await page.click("#empty-trash");
  await answer();
  await page.locator("#trash-summary", { hasText: "The trash is empty" }).waitFor();
  await page.click("#trash button.close");

  // Storage health.
  await page.click("#health-button");
  await page.locator("#health-backends", { hasText: "10 / 10" }).waitFor();
  await snap("health");
  await page.click("#health button.close");

  // Accounts (admins): the one run.sh made is listed; add another from the page.
  await page.click("#accounts-button");
  await page.locator("#account-list", { hasText: "tester" }).waitFor();
  await page.fill("#new-name", "second");
  await page.fill("#new-password", "second's password");
  await page.fill("#new-quota", "1");
  await page.click("#add-account button");
  await page.locator("#account-list tr", { hasText: "second" }).waitFor();
  await page.locator("#account-list tr", { hasText: "1.0 GiB" }).waitFor();
  assert.ok(fs.statSync(onDisk("home/second")).isDirectory(), "its home folder exists");
  await snap("accounts");
  await page.click("#accounts button.close");

  // A shared folder for the account run.sh made, read and write.
  await page.click("#shared-button");
  await page.fill("#shared-name", "team");
  await page.fill("#shared-members", "tester:write, second:read");
  await page.click("#shared-form button");
  await page.locator("#shared-list tr[data-name=team]", { hasText: "second:read" }).waitFor();
  await page.click("#shared button.close");
  assert.ok(fs.statSync(onDisk("shared/team")).isDirectory());

  // Sessions: this one is listed; signing out everywhere ends it.
  await page.click("#sessions-button");
  await page.locator("#session-list", { hasText: "this one" }).waitFor();
  await snap("sessions");
  await page.click("#end-all");
  await page.locator("#login-view").waitFor({ state: "visible" });

  // An account (made by run.sh with `qsfs user add`) sees its home folder only.
  await page.fill("#user", "tester");
  await page.fill("#token", "tester's password");
  await page.click("#login-form button");
  await page.locator("#main-view").waitFor({ state: "visible" });
  await page.locator("#whoami", { hasText: "tester" }).waitFor();
  assert.ok(await page.locator("#health-button").isHidden(), "health is for admins");
  await page.click("#new-folder");
  await answer("mine");
  await page.locator("#entries tr", { hasText: "mine" }).waitFor();
  assert.ok(fs.existsSync(onDisk("home/tester/mine")), "the folder is in the home folder");
  assert.ok(!(await page.locator("#entries tr", { hasText: "docs" }).count()), "others' files unseen");
  await snap("account");
  assert.ok(await page.locator("#accounts-button").isHidden(), "accounts are for admins");
  // Its own password, from the Sessions panel.
  await page.click("#sessions-button");
  await page.fill("#own-current", "tester's password");
  await page.fill("#own-new", "tester's new password");
  await page.click("#own-password button");
  await page.locator("#own-message", { hasText: "Changed" }).waitFor();
  // An app password for a device: WebDAV signs in with it, until it is revoked.
  await page.fill("#app-password-label", "phone");
  await page.click("#app-password-form button");
  const appPassword = await page.locator("#app-password-new").textContent();
  await page.locator("#app-password-list tr", { hasText: "phone" }).waitFor();
  const dav = () => fetch(new URL("/dav/", url).href, {
    method: "PROPFIND",
    headers: { Depth: "1", Authorization: "Basic " + Buffer.from(`tester:${appPassword}`).toString("base64") },
  });
  const listed = await dav();
  assert.equal(listed.status, 207, "WebDAV with the app password");
  assert.ok((await listed.text()).includes("/dav/mine/"), "WebDAV shows the home folder");
  await snap("app-passwords");
  await page.click("#app-password-list tr:has-text('phone') button");
  await answer();
  await page.locator("#app-password-list tr", { hasText: "phone" }).waitFor({ state: "detached" });
  assert.equal((await dav()).status, 401, "a revoked app password signs nothing in");
  // An S3 access key: id and secret shown once, listed by id, revoked.
  await page.fill("#access-key-label", "restic");
  await page.click("#access-key-form button");
  const keyId = await page.locator("#access-key-id").textContent();
  const keySecret = await page.locator("#access-key-secret").textContent();
  assert.ok(/^QS[A-Z2-7]{18}$/.test(keyId) && keySecret.length === 40, `${keyId} ${keySecret}`);
  await page.locator("#access-key-list tr", { hasText: keyId }).waitFor();
  await snap("access-keys");
  await page.click(`#access-key-list tr:has-text('${keyId}') button`);
  await answer();
  await page.locator("#access-key-list tr", { hasText: keyId }).waitFor({ state: "detached" });
  await page.click("#sessions button.close");
  await page.click("#new-folder");
  await answer("after");
  await page.locator("#entries tr", { hasText: "after" }).waitFor();

  // The shared folder: the account works in it, its files land in shared/team.
  await page.click("#shared-button");
  await page.locator("#shared-list tr[data-name=team] button.open-space").click();
  await page.locator("#crumbs a", { hasText: "Shared: team" }).waitFor();
  await page.click("#new-folder");
  await answer("plans");
  await row("plans").waitFor();
  assert.ok(fs.statSync(onDisk("shared/team/plans")).isDirectory(), "in the shared folder");
  await snap("shared-folder");
  await page.reload();
  await page.locator("#crumbs a", { hasText: "Shared: team" }).waitFor();
  await page.click("#shared-button");
  await page.locator("#shared-list tr", { hasText: "Your own files" }).locator("button").click();
  await row("mine").waitFor();

  // Share links: a folder with a password, opened by someone without an account.
  fs.writeFileSync(onDisk("home/tester/mine/note.txt"), "shared words\n");
  await row("mine").locator("button.share").click();
  await page.fill("#share-password", "link password");
  await page.click("#share-form button");
  await page.locator("#share-result").waitFor({ state: "visible" });
  const readLink = await page.locator("#share-url").inputValue();
  assert.match(readLink, /\/s\/[A-Za-z0-9_-]{22}$/);
  await snap("share-made");
  await page.click("#share-dialog button.close");
  // The recipient: a fresh browser, no account, no cookie of the drive.
  const stranger = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", headless: true, args: ["--no-sandbox", "--disable-gpu"] });
  const visitor = await (await stranger.newContext()).newPage();
  visitor.on("pageerror", (e) => errors.push(String(e)));
  await visitor.goto(readLink);
  await visitor.locator("#unlock-form").waitFor({ state: "visible" });
  await visitor.fill("#unlock-password", "link password");
  await visitor.click("#unlock-form button");
  const shared = visitor.locator("#entries tr", { hasText: "note.txt" });
  await shared.waitFor();
  const href = await shared.locator("td.name a").getAttribute("href");
  assert.equal(await (await visitor.request.get(new URL(href, url).href)).text(), "shared words\n");
  // The same folder over WebDAV, with the link's password.
  const davLink = await visitor.locator("#dav-address").textContent();
  assert.equal(davLink, `${readLink}/dav/`);
  const davListing = await fetch(davLink, {
    method: "PROPFIND",
    headers: { Depth: "1", Authorization: "Basic " + Buffer.from("anyone:link password").toString("base64") },
  });
  assert.equal(davListing.status, 207, "the link's folder over WebDAV");
  assert.ok((await davListing.text()).includes("note.txt"), "WebDAV lists the shared file");
  await visitor.screenshot({ path: path.join(out, "share-visitor.png"), fullPage: true });
  // A file drop into the same folder: the visitor sends a file and sees nothing there.
  await row("mine").locator("button.share").click();
  await page.selectOption("#share-kind", "drop");
  await page.click("#share-form button");
  await page.locator("#share-result").waitFor({ state: "visible" });
  const dropLink = await page.locator("#share-url").inputValue();
  await page.click("#share-dialog button.close");
  await visitor.goto(dropLink);
  await visitor.locator("#share-drop").waitFor({ state: "visible" });
  await visitor.setInputFiles("#drop-files", { name: "note.txt", mimeType: "text/plain", buffer: Buffer.from("dropped\n") });
  await visitor.locator("#drop-list li", { hasText: "sent as note (2).txt" }).waitFor();
  assert.equal(fs.readFileSync(onDisk("home/tester/mine/note (2).txt"), "utf8"), "dropped\n");
  // The owner lists the links and revokes the read one: it stops at once.
  await page.click("#shares-button");
  const readRow = page.locator("#share-list tr", { hasText: "(password)" });
  await readRow.waitFor();
  await snap("shares");
  await readRow.locator("button.revoke").click();
  await readRow.waitFor({ state: "detached" });
  await page.click("#shares button.close");
  await visitor.goto(readLink);
  await visitor.locator("#share-error-text", { hasText: "revoked" }).waitFor();
  await stranger.close();
  assert.deepEqual(errors, [], "no script errors in the page");
  console.log(`browser test passed; screenshots in ${out}`);
} catch (e) {
  await snap("failure").catch(() => {});
  console.error(e);
  process.exitCode = 1;
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
