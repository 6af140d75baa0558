// The public view of a project (/public/<slug>): anyone reads its name, description and journal
// without logging in, in their browser's language, live. It speaks only the public routes
// (docs/protocol.md, "Public view (no login)"): GET /api/public/<slug> for the page, and the
// journal's Server-Sent Events (EventSource) for what comes next. Pupils are never named: the
// server sends them as "a pupil of <school>" (`author.badge` "pupil", no name), and this page
// words it in the reader's language.

import { api, h, replace } from "./dom.js";
import { errorText, formatDateTime, getLang, languageNames, loadLanguages, setLang, t } from "./i18n.js";
import { externalLink, linkified, safeUrl } from "./links.js";

const app = document.getElementById("app");
const slug = decodeURIComponent(location.pathname.replace(/^\/public\//, "").split("/")[0] || "");
const KINDS = ["message.posted", "message.edited", "message.deleted", "message.hidden", "message.unhidden"];
const PAGE = 20;
const RETRY_MIN = 1000; // ms before asking again after a refused stream, doubling up to RETRY_MAX
const RETRY_MAX = 30000;

const messages = new Map(); // id -> message, entries and comments, as the public view gives them
const entryEls = new Map(); // entry id -> {li, comments}
let project = null; // the page's summary: name, description, closed
let problem = null; // the error that left nothing to show (not_found: no such public project)
let more = false;
let oldest = null;
let source = null;
let retry = null;
let wait = RETRY_MIN;
const ui = {};

// -- words -----------------------------------------------------------------------------------

function authorName(author) {
  if (author?.name) return author.name;
  if (author?.badge === "pupil") return author.school ? t("author.pupil_of", { school: author.school }) : t("author.pupil");
  return t("public.member");
}

function byline(m) {
  const badge = m.author?.name ? m.author.badge : null; // named: a teacher or a bot
  return h("p", { class: "meta" },
    h("span", { class: "author" }, authorName(m.author)),
    badge ? h("span", { class: `badge badge-${badge}` }, t(`badge.${badge}`)) : null,
    m.author?.name && m.author.school ? h("span", { class: "school" }, m.author.school) : null,
    h("time", { datetime: m.created_at || "" }, formatDateTime(m.created_at)),
    m.edited_at ? h("span", { class: "edited" }, t("message.edited")) : null,
    badge === "bot" ? h("span", { class: "bot-note" }, t("journal.by_bot")) : null);
}

// -- the journal -----------------------------------------------------------------------------

const visible = (m) => (m.state || "visible") === "visible";

function renderComments(entryId) {
  const parts = entryEls.get(entryId);
  if (!parts) return;
  const comments = [...messages.values()].filter((m) => m.parent_id === entryId && visible(m)).sort((a, b) => a.id - b.id);
  replace(parts.count, t("journal.comments", { n: comments.length }));
  replace(parts.comments, comments.map((c) => h("li", { class: "comment", "data-id": c.id }, byline(c), h("div", { class: "text" }, linkified(c.text)))));
  parts.section.hidden = comments.length === 0;
}

function renderEntry(m) {
  const links = (m.links || []).filter(safeUrl);
  const count = h("h4", { class: "comments-title" });
  const comments = h("ol", { class: "comments" });
  const section = h("section", { class: "entry-comments", "aria-label": t("journal.comments_of", { title: m.title || "" }) }, count, comments);
  const li = h("li", { class: `entry${m.author?.badge === "bot" ? " entry-bot" : ""}`, "data-id": m.id, "data-bot": m.author?.badge === "bot" ? "true" : null },
    h("article", { "aria-labelledby": `entry-${m.id}-title` },
      h("h3", { id: `entry-${m.id}-title`, class: "entry-title" }, m.title || t("journal.untitled")),
      byline(m),
      h("div", { class: "text" }, linkified(m.text)),
      links.length ? h("ul", { class: "entry-links", "aria-label": t("journal.links") }, links.map((u) => h("li", {}, externalLink(u, u)))) : null,
      section));
  entryEls.set(m.id, { li, count, comments, section });
  renderComments(m.id);
  return li;
}

function upsert(m) {
  messages.set(m.id, m);
  if (m.seq && (oldest === null || m.seq < oldest)) oldest = m.seq;
  if (!ui.list) return;
  if (m.parent_id) {
    renderComments(m.parent_id);
    return;
  }
  entryEls.get(m.id)?.li.remove();
  entryEls.delete(m.id);
  if (visible(m)) {
    const li = renderEntry(m);
    const after = [...ui.list.children].find((el) => Number(el.dataset.id) < m.id);
    ui.list.insertBefore(li, after || null);
  }
  renderEmpty();
}

function renderEntries() {
  entryEls.clear();
  const entries = [...messages.values()].filter((m) => !m.parent_id && visible(m)).sort((a, b) => b.id - a.id);
  replace(ui.list, entries.map(renderEntry));
  renderEmpty();
}

function renderEmpty() {
  ui.empty.hidden = entryEls.size > 0;
}

// -- the page --------------------------------------------------------------------------------

function languageMenu() {
  const select = h("select", {
    id: "lang", "aria-label": t("lang.label"),
    onchange: async () => { await setLang(select.value); render(); },
  }, Object.entries(languageNames()).map(([tag, name]) => h("option", { value: tag, lang: tag, selected: tag === getLang() }, name)));
  return h("span", { class: "lang" }, select);
}

function setStatus(kind) {
  if (!ui.status) return;
  ui.status.dataset.state = kind;
  ui.status.textContent = t(`public.status.${kind}`);
}

function render() {
  const header = h("header", {},
    h("span", { class: "brand" }, t("app.title")),
    h("span", { class: "who" }, t("public.tagline")),
    languageMenu(),
    h("a", { href: "/", class: "link" }, t("public.members_login")));
  if (problem) {
    document.title = t("public.unavailable_title");
    replace(app, header, h("main", { id: "main", class: "public public-missing", "data-testid": "public-missing", "data-code": problem.code },
      h("h1", {}, t("public.unavailable_title")),
      h("p", {}, problem.code === "not_found" ? t("public.not_found") : errorText(problem)),
      problem.code === "not_found" ? null : h("button", { type: "button", onclick: load }, t("public.try_again"))));
    return;
  }
  if (!project) {
    replace(app, header, h("main", { id: "main", class: "public" }, h("p", { role: "status" }, t("public.loading"))));
    return;
  }
  document.title = `${project.name} — ${t("app.title")}`;
  ui.status = h("p", { class: "live-status", role: "status", "data-testid": "public-status" });
  ui.list = h("ol", { class: "journal-entries", "data-testid": "public-journal", "aria-labelledby": "public-journal-title" });
  ui.empty = h("p", { class: "empty" }, t("journal.empty"));
  ui.older = h("button", { type: "button", class: "older", hidden: !more, "data-testid": "public-older", onclick: loadOlder }, t("journal.older"));
  replace(app, header, h("main", { id: "main", class: "public", "data-testid": "public-page" },
    h("h1", {}, project.name),
    project.description ? h("p", { class: "description" }, project.description) : null,
    project.closed ? h("p", { class: "readonly" }, t("public.closed")) : null,
    h("p", { class: "help" }, t("public.about")),
    h("h2", { id: "public-journal-title" }, t("public.journal")),
    ui.status, ui.empty, ui.list, ui.older));
  setStatus(source?.readyState === EventSource.OPEN ? "live" : "connecting");
  renderEntries();
}

async function page(before) {
  const found = await api("GET", `/api/public/${encodeURIComponent(slug)}?limit=${PAGE}${before ? `&before=${before}` : ""}`);
  project = { name: found.name, description: found.description, closed: found.closed };
  more = found.more;
  for (const m of found.journal) upsert(m);
  if (ui.older) ui.older.hidden = !more;
  return found;
}

async function loadOlder() {
  ui.older.disabled = true;
  try {
    const before = entryEls.size;
    for (let i = 0; i < 20 && more && entryEls.size === before; i += 1) await page(oldest);
  } catch (err) {
    problem = err;
    render();
  } finally {
    ui.older.disabled = false;
  }
}

// The page from the start: the journal's newest page, then its events from there on.
async function load() {
  clearTimeout(retry);
  source?.close();
  source = null;
  messages.clear();
  oldest = null;
  try {
    const first = await page(null);
    problem = null;
    render();
    listen(Math.max(0, ...first.journal.map((m) => m.seq)));
  } catch (err) {
    problem = err;
    project = null;
    render();
  }
}

function listen(since) {
  source = new EventSource(`/api/public/${encodeURIComponent(slug)}/events?since=${since}`);
  const stream = source;
  for (const kind of KINDS) {
    stream.addEventListener(kind, (ev) => upsert(JSON.parse(ev.data).message));
  }
  // Too much was missed to replay: the page again; the stream goes on (its id moved on).
  stream.addEventListener("reload", () => page(null).then(renderEntries, () => {}));
  stream.onopen = () => {
    wait = RETRY_MIN;
    setStatus("live");
  };
  stream.onerror = () => {
    if (stream !== source) return;
    if (stream.readyState === EventSource.CLOSED) {
      // Refused (the public view was turned off, or too many streams): ask the page again,
      // which says which — now, or in a while.
      setStatus("reconnecting");
      retry = setTimeout(load, wait);
      wait = Math.min(wait * 2, RETRY_MAX);
    } else {
      setStatus("reconnecting"); // EventSource tries again by itself, from the last event it had
    }
  };
}

async function boot() {
  await loadLanguages();
  render();
  await load();
}

boot();
