// What the drive's page modules share: sizes as people read them, table rows, buttons, and
// the one question dialog (#ask).
const $ = (id) => document.getElementById(id);

export function size(n) {
  if (n < 1024) return n + " B";
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let u = -1;
  do { n /= 1024; u++; } while (n >= 1024 && u < units.length - 1);
  return n.toFixed(n < 10 ? 1 : 0) + " " + units[u];
}

// A table row: a cell of text per entry of `texts`, then a cell holding `actions` (nodes
// or text).
export function tableRow(texts, actions) {
  const tr = document.createElement("tr");
  for (const text of texts) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.append(td);
  }
  const td = document.createElement("td");
  td.append(...actions);
  tr.append(td);
  return tr;
}

export function button(text, onclick, className = "") {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = text;
  b.className = className;
  b.onclick = onclick;
  return b;
}

export function ask(text, value, { input = true, ok = "OK" } = {}) {
  return new Promise((resolve) => {
    const d = $("ask");
    $("ask-text").textContent = text;
    $("ask-input").hidden = !input;
    $("ask-input").value = value || "";
    $("ask-ok").textContent = ok;
    const done = (v) => { d.close(); resolve(v); };
    $("ask-cancel").onclick = () => done(null);
    $("ask-form").onsubmit = (ev) => { ev.preventDefault(); done(input ? $("ask-input").value : true); };
    d.showModal();
    if (input) $("ask-input").select();
  });
}

// A question with several answers (#choose): resolves to the value of the one clicked
// (null when dismissed) and whether "for all the others too" was ticked.
export function choose(text, answers, { forAll = false } = {}) {
  return new Promise((resolve) => {
    const d = $("choose");
    $("choose-text").textContent = text;
    $("choose-all-row").hidden = !forAll;
    $("choose-all").checked = false;
    const done = (value) => { d.close(); resolve({ value, all: $("choose-all").checked }); };
    $("choose-answers").replaceChildren(...answers.map(([value, label]) => button(label, () => done(value), "answer-" + value)));
    d.oncancel = () => done(null);
    d.showModal();
  });
}
