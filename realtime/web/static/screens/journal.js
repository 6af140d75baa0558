// The project journal (the room whose kind is "journal"), shown as a journal: entries newest
// first — title, text with its links, author and badge, date — each with its comments under it;
// a form for a new entry for those who may post there (teachers), a comment box under each entry
// for those who may comment (every member role), live, and older entries on demand. An entry
// posted by a bot says so. #/room/<id>/message/<id> opens the journal at that entry or comment.

import { api, h, replace } from "../dom.js";
import { formatDateTime, t } from "../i18n.js";
import { externalLink, linkified, safeUrl } from "../links.js";
import { clientId } from "../live.js";
import { currentRoom, currentSpace, state, userKey } from "../state.js";
import { confirmed, dialog, fail, field, toast } from "../ui.js";
import { pageSeen, roomClosed, roomOpened, roomRead } from "./unread.js";

const PAGE = 50; // messages (entries and comments) per request
const MAX_LINKS = 5;

export function journalView(space, room, args = []) {
  const live = state.live;
  const wanted = args[0] === "message" && typeof args[1] === "number" ? args[1] : null;
  const messages = new Map(); // id -> message (entries and comments)
  const entryEls = new Map(); // entry id -> {li, head, comments, form}
  const list = h("ol", { class: "journal-entries", "data-testid": "journal", "aria-labelledby": "journal-entries-title" });
  const older = h("button", { type: "button", class: "older", hidden: true, "data-testid": "journal-older" }, t("journal.older"));
  let oldest = null; // the smallest seq loaded: page on before it
  let more = false;
  const announcer = h("p", { class: "visually-hidden", "aria-live": "polite" }); // what arrives live, said once
  const view = { el: null };
  // Drafts survive a redraw (a new welcome after a reconnect, a change of language): the
  // entry's is kept on this browser as the chat's message box is, a comment's while the
  // journal is open.
  const draftKey = userKey("journal-draft", room.channel);
  const commentDrafts = new Map(); // entry id -> text

  const current = () => currentRoom(space.id, room.id) || room;
  const rights = () => current().rights || [];
  const writable = () => !current().archived && !currentSpace(space.id)?.closed;
  const canPost = () => rights().includes("post") && writable();
  const canComment = () => rights().includes("comment") && writable();
  const moderates = () => rights().includes("moderate");

  // -- one entry, one comment ----------------------------------------------------------------

  function authorName(author) {
    if (!author) return "";
    if (author.name) return author.name;
    return author.school ? t("author.pupil_of", { school: author.school }) : t("author.pupil");
  }

  function byline(m) {
    const bot = m.author?.role === "bot";
    return h("p", { class: "meta" },
      h("span", { class: "author" }, authorName(m.author)),
      m.author?.role ? h("span", { class: `badge badge-${m.author.role}`, "data-testid": "badge" }, t(`badge.${m.author.role}`)) : null,
      m.author?.school && m.author?.name ? h("span", { class: "school" }, m.author.school) : null,
      h("time", { datetime: m.created_at || "" }, formatDateTime(m.created_at)),
      m.edited_at && m.state === "visible" ? h("span", { class: "edited" }, t("message.edited")) : null,
      bot ? h("span", { class: "bot-note" }, t("journal.by_bot")) : null);
  }

  function actions(m) {
    const mine = m.author?.id === state.me.user.id;
    const kind = m.parent_id ? "comment" : "entry";
    const out = h("div", { class: "actions" });
    if (m.state === "visible" && !mine) {
      out.appendChild(h("button", { type: "button", "data-action": "report", onclick: () => report(m) }, t("action.report")));
    }
    if (moderates() && !mine && m.state === "visible") {
      out.appendChild(h("button", { type: "button", "data-action": "hide", onclick: () => moderate("hide", m) }, t("action.hide")));
    }
    if (moderates() && !mine && m.state === "hidden") {
      out.appendChild(h("button", { type: "button", "data-action": "unhide", onclick: () => moderate("unhide", m) }, t("action.unhide")));
    }
    if (mine && m.state === "visible") {
      out.appendChild(h("button", { type: "button", "data-action": "delete", onclick: () => deleteOwn(m) }, t(`journal.delete_${kind}`)));
    }
    return out.childNodes.length ? out : null;
  }

  function body(m, kind) {
    if (m.state === "hidden") return h("p", { class: "gone" }, h("em", {}, t(`journal.hidden_${kind}`)));
    if (m.state === "deleted") return h("p", { class: "gone" }, h("em", {}, t(`journal.deleted_${kind}`)));
    return h("div", { class: "text" }, linkified(m.text));
  }

  function entryHead(m) {
    const links = m.state === "visible" ? (m.links || []).filter(safeUrl) : [];
    return [
      h("h3", { id: `entry-${m.id}-title`, class: "entry-title" },
        m.state === "visible" && m.title ? m.title : t("journal.untitled")),
      byline(m),
      body(m, "entry"),
      links.length ? h("ul", { class: "entry-links", "aria-label": t("journal.links") },
        links.map((url) => h("li", {}, externalLink(url, url)))) : null,
      actions(m),
    ];
  }

  function renderComment(c) {
    return h("li", { class: `comment ${c.state}`, id: `message-${c.id}`, "data-id": c.id, "data-state": c.state },
      byline(c), body(c, "comment"), actions(c));
  }

  function commentsOf(entryId) {
    return [...messages.values()].filter((m) => m.parent_id === entryId).sort((a, b) => a.id - b.id);
  }

  function commentForm(entry) {
    if (!canComment() || entry.state !== "visible") return null;
    const id = `comment-${entry.id}`;
    const text = h("textarea", { id, name: "text", rows: 1, required: true, maxlength: state.me.limits?.max_text_chars || 4000 },
      commentDrafts.get(entry.id) || "");
    text.addEventListener("input", () => commentDrafts.set(entry.id, text.value));
    const form = h("form", { class: "comment-form", "data-testid": "comment-form" },
      h("label", { for: id }, t("journal.comment_label")),
      h("div", { class: "comment-row" }, text, h("button", { type: "submit" }, t("journal.comment_send"))));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const value = text.value.trim();
      if (!value) return;
      text.value = "";
      commentDrafts.delete(entry.id);
      const sent = await send({ type: "post", channel: room.channel, parent: entry.id, text: value, client_id: clientId() });
      if (!sent) { // refused: give the words back
        text.value = value;
        commentDrafts.set(entry.id, value);
      }
    });
    return form;
  }

  function renderComments(entryId) {
    const parts = entryEls.get(entryId);
    if (!parts) return;
    const comments = commentsOf(entryId);
    replace(parts.count, t("journal.comments", { n: comments.filter((c) => c.state === "visible").length }));
    replace(parts.comments, comments.map(renderComment));
    parts.comments.hidden = comments.length === 0;
  }

  function renderEntry(m) {
    const head = h("div", { class: "entry-head" }, entryHead(m));
    const count = h("h4", { class: "comments-title" });
    const comments = h("ol", { class: "comments" });
    const form = commentForm(m);
    const li = h("li", {
      class: `entry ${m.state}${m.author?.role === "bot" ? " entry-bot" : ""}`, id: `message-${m.id}`,
      "data-id": m.id, "data-state": m.state, "data-bot": m.author?.role === "bot" ? "true" : null,
    }, h("article", { "aria-labelledby": `entry-${m.id}-title` }, head,
      h("section", { class: "entry-comments", "aria-label": t("journal.comments_of", { title: m.title || "" }) }, count, comments, form)));
    entryEls.set(m.id, { li, head, count, comments, form });
    renderComments(m.id);
    return li;
  }

  // Insert or replace a message wherever it belongs: an entry in the list (newest first, by id),
  // a comment under its entry (oldest first) — or kept until its entry is loaded.
  function upsert(m) {
    messages.set(m.id, m);
    if (oldest === null || m.seq < oldest) oldest = m.seq;
    if (m.parent_id) {
      renderComments(m.parent_id);
      return;
    }
    const known = entryEls.get(m.id);
    if (known) {
      replace(known.head, entryHead(m));
      known.li.dataset.state = m.state;
      known.li.classList.toggle("hidden", m.state === "hidden");
      known.li.classList.toggle("deleted", m.state === "deleted");
      const form = commentForm(m);
      if (!!form !== !!known.form) { // hidden or shown again: the comment box follows
        known.form?.remove();
        if (form) known.comments.after(form);
        known.form = form;
      }
      return;
    }
    list.querySelector(".empty")?.remove();
    const li = renderEntry(m);
    const after = [...list.children].find((el) => Number(el.dataset.id) < m.id);
    list.insertBefore(li, after || null);
  }

  function renderAll() {
    entryEls.clear();
    const entries = [...messages.values()].filter((m) => !m.parent_id).sort((a, b) => b.id - a.id);
    replace(list, entries.length ? entries.map(renderEntry) : h("li", { class: "empty" }, t("journal.empty")));
  }

  // -- loading ---------------------------------------------------------------------------------

  async function page(before) {
    const page = await api("GET", `/api/rooms/${room.id}/messages?limit=${PAGE}${before ? `&before=${before}` : ""}`);
    for (const m of page.messages) upsert(m);
    more = page.more;
    older.hidden = !more;
    return page;
  }

  async function load() {
    try {
      messages.clear();
      oldest = null;
      const first = await page(null);
      renderAll();
      const top = first.messages.length ? first.messages[0].seq : 0;
      const ok = await live.subscribe(room.channel, top);
      if (ok?.resync) return load();
      if (wanted) await reveal(wanted);
    } catch (err) {
      fail(err);
    }
  }

  // Older messages until at least one more entry shows (a page may hold only comments).
  async function loadOlder() {
    older.disabled = true;
    try {
      const before = entryEls.size;
      for (let i = 0; i < 20 && more && entryEls.size === before; i += 1) await page(oldest);
      if (entryEls.size === before) renderAll();
    } catch (err) {
      fail(err);
    } finally {
      older.disabled = false;
    }
  }
  older.addEventListener("click", loadOlder);

  // The entry or comment an address names: loaded (paging back) and shown, with the focus.
  async function reveal(id) {
    for (let i = 0; i < 20 && !messages.has(id) && more; i += 1) await page(oldest);
    const el = list.querySelector(`[data-id="${id}"]`);
    if (!el) {
      toast(t("journal.not_found"));
      return;
    }
    el.classList.add("target");
    el.setAttribute("tabindex", "-1");
    el.scrollIntoView({ block: "center" });
    el.focus();
  }

  // -- writing ---------------------------------------------------------------------------------

  // Sends a post; true when it was stored (or kept to send again once the socket is back).
  async function send(frame) {
    try {
      await live.post(frame);
      return true;
    } catch (err) {
      if (err.code === "network" || err.code === "unavailable") {
        toast(t("journal.queued"));
        return true; // kept; sent again on reconnect with the same client_id
      }
      fail(err);
      return false;
    }
  }

  function entryForm() {
    if (!canPost()) return null;
    const title = h("input", { id: "journal-title", name: "title", required: true, maxlength: state.me.limits?.max_subject_chars || 200, autocomplete: "off" });
    const text = h("textarea", { id: "journal-text", name: "text", rows: 3, required: true, maxlength: state.me.limits?.max_text_chars || 4000 });
    const links = h("input", { id: "journal-links", name: "links", "aria-describedby": "journal-links-help", inputmode: "url", autocomplete: "off" });
    const error = h("p", { class: "error", role: "alert", "data-testid": "entry-error" });
    let draft = {};
    try {
      draft = JSON.parse(localStorage.getItem(draftKey) || "{}");
    } catch { /* a draft from elsewhere: start afresh */ }
    title.value = draft.title || "";
    text.value = draft.text || "";
    links.value = draft.links || "";
    const keep = () => localStorage.setItem(draftKey, JSON.stringify({ title: title.value, text: text.value, links: links.value }));
    const form = h("form", { class: "entry-form", "data-testid": "entry-form", "aria-labelledby": "entry-form-title" },
      h("h2", { id: "entry-form-title" }, t("journal.new_entry")),
      h("div", { class: "field" }, h("label", { for: "journal-title" }, t("journal.title_label")), title),
      h("div", { class: "field" }, h("label", { for: "journal-text" }, t("journal.text_label")), text),
      h("div", { class: "field" }, h("label", { for: "journal-links" }, t("journal.links_label")), links,
        h("span", { id: "journal-links-help", class: "help" }, t("journal.links_help", { n: MAX_LINKS }))),
      error,
      h("button", { type: "submit", "data-testid": "entry-publish" }, t("journal.publish")));
    form.addEventListener("input", keep);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      error.textContent = "";
      const values = { title: title.value.trim(), text: text.value.trim(), links: links.value };
      if (!values.title || !values.text) return;
      const urls = values.links.split(/\s+/).filter(Boolean);
      if (urls.length > MAX_LINKS || urls.some((u) => !safeUrl(u))) {
        error.textContent = t("journal.links_bad", { n: MAX_LINKS });
        links.focus();
        return;
      }
      const frame = { type: "post", channel: room.channel, title: values.title, text: values.text, client_id: clientId() };
      if (urls.length) frame.links = urls;
      title.value = text.value = links.value = "";
      localStorage.removeItem(draftKey);
      if (!(await send(frame))) {
        title.value = values.title;
        text.value = values.text;
        links.value = values.links;
        keep();
      }
    });
    return form;
  }

  async function report(m) {
    const answer = await dialog({ title: t("action.report"), fields: [field(t("prompt.report"), "note", { multiline: true, maxlength: state.me.limits?.max_note_chars || 500 })], confirm: t("action.report"), testid: "report-dialog" });
    if (answer === null) return;
    try {
      await live.request({ type: "report", channel: room.channel, id: m.id, note: answer.note });
      toast(t("done.report"));
    } catch (err) {
      fail(err);
    }
  }

  async function moderate(type, m) {
    const answer = await dialog({ title: t(`action.${type}`), fields: [field(t("prompt.reason"), "reason", { multiline: true, maxlength: state.me.limits?.max_note_chars || 500 })], confirm: t(`action.${type}`), testid: "reason-dialog" });
    if (answer === null) return;
    try {
      await live.request({ type, channel: room.channel, id: m.id, reason: answer.reason });
    } catch (err) {
      fail(err);
    }
  }

  async function deleteOwn(m) {
    const kind = m.parent_id ? "comment" : "entry";
    if (!(await confirmed(t(`journal.delete_${kind}`), t("confirm.delete_own"), t("action.delete")))) return;
    try {
      await live.request({ type: "delete", channel: room.channel, id: m.id });
    } catch (err) {
      fail(err);
    }
  }

  // -- the screen ------------------------------------------------------------------------------

  view.render = () => {
    view.el = replace(view.el || h("section", { class: "journal", "data-testid": "journal-view", "data-channel": room.channel }),
      h("h1", {}, current().name, current().name === t("journal.kind") ? null : h("span", { class: "area" }, t("journal.kind"))),
      current().archived || currentSpace(space.id)?.closed ? h("p", { class: "readonly" }, t("journal.readonly")) : null,
      // Said where people write: what they write here, anyone on the internet may read.
      currentSpace(space.id)?.public ? h("p", { class: "notice public-notice", "data-testid": "journal-public" }, t("journal.public_notice")) : null,
      entryForm(),
      h("h2", { id: "journal-entries-title" }, t("journal.entries")),
      announcer, list, older);
    if (messages.size) renderAll();
  };
  view.render();
  // What is on screen is read: the menu's count clears, and the server keeps the position (for
  // the reader's other devices), at most once a second.
  let readTimer = null;
  function markRead(messageId) {
    if (!pageSeen()) return;
    roomRead(room.id, messageId);
    clearTimeout(readTimer);
    readTimer = setTimeout(() => api("POST", `/api/rooms/${room.id}/read`, {}).catch(() => {}), 1000);
  }
  const onVisible = () => markRead();

  view.start = async () => {
    roomOpened(room.id);
    document.addEventListener("visibilitychange", onVisible);
    await load();
    markRead();
  };
  view.dispose = () => {
    clearTimeout(readTimer);
    document.removeEventListener("visibilitychange", onVisible);
    roomClosed(room.id);
    live.unsubscribe(room.channel);
  };
  view.rightsChanged = () => {
    if (currentRoom(space.id, room.id)) view.render();
  };
  view.channelEnded = (channel) => {
    if (channel === room.channel) replace(list, h("li", { class: "ended" }, t("error.forbidden")));
  };
  view.onEvent = (e) => {
    if (e.channel !== room.channel || !e.message) return;
    const m = e.message;
    if (e.kind === "message.posted" && !messages.has(m.id) && m.author?.id !== state.me.user.id) {
      announcer.textContent = m.parent_id
        ? t("journal.new_comment_live", { author: authorName(m.author) })
        : t("journal.new_entry_live", { author: authorName(m.author), title: m.title || "" });
    }
    upsert(m);
    if (e.kind === "message.posted") markRead(m.id);
  };
  return view;
}
