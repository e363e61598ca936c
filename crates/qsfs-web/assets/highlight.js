// A small syntax highlighter for previews: comments, strings, numbers and keywords of the
// common languages, emitted as escaped HTML with token classes. Not a parser: good enough
// to read code, never unsafe (every character goes through escape()).
const KEYWORDS = new Set((
  "as async await break case catch class const continue crate def default defer do elif else " +
  "enum export extends false fn for from func function go if impl import in interface let " +
  "loop match mod move mut new nil null pub return self Self static struct super switch " +
  "this throw trait true try type typeof use var void where while with yield None True False " +
  "package private protected public int char float double bool string void unsigned sizeof"
).split(" "));

const LANG_COMMENTS = {
  hash: ["#"],
  slash: ["//"],
  dash: ["--"],
};

function commentStyle(ext) {
  if (["py", "sh", "rb", "toml", "yaml", "yml", "ini", "cfg", "conf", "mk"].includes(ext)) return LANG_COMMENTS.hash;
  if (["sql", "lua"].includes(ext)) return LANG_COMMENTS.dash;
  return LANG_COMMENTS.slash;
}

export function escape(s) {
  return s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

export function highlight(text, ext) {
  const line = commentStyle(ext);
  const block = LANG_COMMENTS.slash === line ? ["/*", "*/"] : null;
  let out = "";
  let i = 0;
  const span = (cls, s) => { out += `<span class="tok-${cls}">${escape(s)}</span>`; };
  while (i < text.length) {
    const rest = text.slice(i, i + 2);
    if (block && rest === block[0]) {
      const end = text.indexOf(block[1], i + 2);
      const j = end < 0 ? text.length : end + 2;
      span("com", text.slice(i, j)); i = j; continue;
    }
    if (line.some((m) => text.startsWith(m, i))) {
      const end = text.indexOf("\n", i);
      const j = end < 0 ? text.length : end;
      span("com", text.slice(i, j)); i = j; continue;
    }
    const c = text[i];
    if (c === '"' || c === "'" || c === "`") {
      let j = i + 1;
      while (j < text.length && text[j] !== c && text[j] !== "\n") j += text[j] === "\\" ? 2 : 1;
      j = Math.min(j + 1, text.length);
      span("str", text.slice(i, j)); i = j; continue;
    }
    if (/[0-9]/.test(c) && !/[A-Za-z_]/.test(text[i - 1] || "")) {
      const m = /^[0-9][0-9a-fA-FxX_.]*/.exec(text.slice(i));
      span("num", m[0]); i += m[0].length; continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(text.slice(i));
      if (KEYWORDS.has(m[0])) span("kw", m[0]); else out += escape(m[0]);
      i += m[0].length; continue;
    }
    out += escape(c); i += 1;
  }
  return out;
}
