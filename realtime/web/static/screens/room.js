// A room: its messages (newest at the bottom, older ones loaded when scrolling up), who is here
// and who is typing, the message box where the role may post, and the actions each role has on a
// message (edit and delete one's own; report; hide, show again, delete and mute for those who
// moderate). How one message looks is screens/messages.js; unread counts and alerts, unread.js.
//
// The list holds at most MAX_DOM messages however long the room: scrolling up loads older pages
// and lets go of the newest end, scrolling back down loads it again — a room of thousands of
// messages scrolls as lightly as one of fifty. While the reader is at the newest message the list
// follows the conversation; once they scroll up, new messages wait behind a "new messages ↓"
// button instead of pulling them down. Their own message always brings them to the bottom.
// `#/room/<id>/message/<message id>` opens the room around that message, highlighted.
//
// Where the viewer may not write, the message box's place says why: their role; the room archived
// by a teacher; the project closed; a mute, until when (the welcome lists one's own mutes, and a
// post refused as `muted` says it too) — and what they had started writing is kept (under their
// own key on this browser) and comes back with the box. A room deleted while it is open, or one
// the viewer can no longer read, says so and goes back to Start. A platform moderator, in no
// project, opens any room from a report: its name, state, project and their rights come over
// HTTP (GET /api/rooms/{id}) and its `room` frames, since no welcome lists it.

import { api, clear, h, replace } from "../dom.js";
import { errorText, formatDateTime, formatList, sameName, t } from "../i18n.js";
import { clientId } from "../live.js";
import { currentRoom, currentSpace, state, userKey } from "../state.js";
import { confirmed, dialog, fail, field, toast } from "../ui.js";
import { fixDays, renderMessage } from "./messages.js";
import { showProfile } from "./profile_dialog.js";
import { memberScopes, muteDialog } from "./mute_dialog.js";
import {
  alertUser, mentions, notifyOn, notifySupported, pageSeen, roomClosed, roomMissed, roomOpened, roomRead,
  soundOn, toggleNotify, toggleSound,
} from "./unread.js";

const FIRST_PAGE = 50; // messages shown on opening a room
const PAGE = 100; // each page loaded while scrolling
const MAX_DOM = 300; // messages held in the list at most
const NEAR = 200; // px from an end of the list that loads the next page
const FOLLOWING = 60; // px from the bottom that still counts as "at the bottom"

// Reports made from this page, by message id. The server tells nobody who reported what (the
// author must not learn it, and a message's state says nothing of reports), so the reporter's
// "reported" mark lives in this page's memory: it lasts until the page is reloaded.
const reported = new Set();
const LONGEST_WAIT = 2 ** 31 - 1; // ms: what setTimeout takes (a mute may last 30 days)

// `space` and `room` as the welcome has them; `space` null for a room no welcome lists (a
// platform moderator's): `room` is then only {id}, and the rest is read over HTTP.
export function roomView(space, room, { messageId = null } = {}) {
  const live = state.live;
  const channel = room.channel || `room:${room.id}`;
  const outside = !space;
  let info = null; // outside: GET /api/rooms/{id}, kept current by `room` frames
  let known = outside ? { id: room.id, channel, name: "", area: null, kind: "room" } : room; // the last state seen
  let role = space?.role; // the viewer's role in the project when the room was last listed
  const list = h("ol", {
    class: "messages", "aria-live": "polite", "aria-relevant": "additions", "aria-label": known.name || channel,
    "data-testid": "messages", tabindex: "0",
  });
  const presenceList = h("ul", { class: "presence", "aria-label": t("room.here"), "data-testid": "presence" });
  const typingLine = h("p", { class: "typing", "aria-live": "polite", "data-testid": "typing" });
  const older = h("button", { type: "button", class: "older", hidden: true, onclick: () => loadOlder() }, t("room.older"));
  const jump = h("button", { type: "button", class: "jump", hidden: true, "data-testid": "jump", onclick: () => toLatest() });
  const byId = new Map(); // message id -> {el, message}
  const byClientId = new Map(); // optimistic posts: client_id -> el
  const people = new Map();
  const typing = new Map(); // user id -> {name, until}
  let hasOlder = false; // older messages than the list's first remain on the server
  let atNewest = true; // the list's last message is the room's newest
  let following = true; // the reader is at the bottom: new messages scroll into view
  let unseen = 0; // messages that came while the reader was scrolled up (or away from the newest)
  let loading = null; // the page request under way, if any
  let editing = null; // id of the message being edited
  let highlighted = messageId;
  let lastTyping = 0;
  let readTimer = null;
  let typingTimer = null;
  let disposed = false;
  let ended = false; // the server ended the subscription: the room was deleted, or is no longer readable
  let left = false;
  let endTimer = null;
  let refusedMute = null; // {scope, until} of a post refused as `muted`, until a welcome says what is so
  const view = { el: null };

  const here = () => (outside ? info : currentRoom(space.id, room.id)); // the room as it is now (null: gone)
  const project = () => (outside ? info?.space : currentSpace(space.id));
  const rights = () => here()?.rights || [];
  // An archived room, like a closed project, is read-only for everyone (welcome's `archived`,
  // `closed`); a muted member writes nothing there until the mute ends.
  const canPost = () => rights().includes("post") && !here()?.archived && !project()?.closed && !mutedUntil() && !ended;
  const moderates = () => rights().includes("moderate");
  const draftKey = () => userKey("draft", channel);

  // When the viewer's mute here ends (ISO), if they are muted in the room's area or in all of
  // the project now: the welcome's `mutes`, or the refusal of their last post.
  function mutedUntil() {
    const area = here()?.area;
    const now = Date.now();
    let until = null;
    for (const m of [...(project()?.mutes || []), ...(refusedMute ? [refusedMute] : [])]) {
      if ((m.scope === area || m.scope === "all") && Date.parse(m.until) > now && (!until || Date.parse(m.until) > Date.parse(until))) until = m.until;
    }
    return until;
  }
  const mine = (m) => m.author?.id != null && m.author.id === state.me.user.id;

  // -- the list ----------------------------------------------------------------------------

  const messageEls = () => list.querySelectorAll(":scope > li.message:not(.pending)");
  const pendingEls = () => list.querySelectorAll(":scope > li.message.pending");
  const seqOf = (el) => Number(el.dataset.seq);
  function ends() {
    const els = messageEls();
    return els.length ? [seqOf(els[0]), seqOf(els[els.length - 1])] : [null, null];
  }
  const newestId = () => {
    const els = messageEls();
    return els.length ? Number(els[els.length - 1].dataset.id) : null;
  };

  const act = {
    report, hide: (m) => moderate("hide", m), unhide: (m) => moderate("unhide", m), remove: (m) => moderate("delete", m),
    mute, deleteOwn, edit: startEdit, saveEdit, cancelEdit,
  };

  function render(m, pending = false) {
    const el = renderMessage(m, {
      me: state.me.user, pending, mine: pending || mine(m), moderates: moderates(), canEdit: canPost(),
      reported: reported.has(m.id), editing: editing === m.id, act,
    });
    if (m.id === highlighted) el.classList.add("highlight");
    return el;
  }

  // A message in its place by seq: replaced when known, else added at the end it belongs to.
  function place(m) {
    const known = byId.get(m.id);
    // An event never carries a hidden message's words: a moderator keeps those already shown.
    if (known && m.state === "hidden" && m.text == null && moderates()) m = { ...m, text: known.message.text };
    const el = render(m);
    if (known) {
      known.el.replaceWith(el);
    } else {
      const optimistic = m.client_id && byClientId.get(m.client_id);
      if (optimistic) {
        optimistic.replaceWith(el);
        byClientId.delete(m.client_id);
      } else {
        let before = pendingEls()[0] || null;
        for (const other of messageEls()) {
          if (seqOf(other) > m.seq) {
            before = other;
            break;
          }
        }
        list.insertBefore(el, before);
      }
    }
    byId.set(m.id, { el, message: m });
    return el;
  }

  // A page of messages the list does not hold yet, all at one end: one insertion, not one each.
  function placeAtEnd(messages, end) {
    const fresh = document.createDocumentFragment();
    for (const m of messages.slice().sort((a, b) => a.seq - b.seq)) {
      if (byId.has(m.id)) {
        place(m);
        continue;
      }
      const el = render(m);
      byId.set(m.id, { el, message: m });
      fresh.appendChild(el);
    }
    if (end === "top") list.insertBefore(fresh, list.firstChild);
    else list.insertBefore(fresh, pendingEls()[0] || null);
  }

  function forget(el) {
    byId.delete(Number(el.dataset.id));
    el.remove();
  }

  // Lets go of messages beyond MAX_DOM at the end away from the reader.
  function trim(end) {
    const els = [...messageEls()];
    let extra = els.length - MAX_DOM;
    if (extra <= 0) return;
    if (end === "top") {
      const height = list.scrollHeight;
      for (const el of els.slice(0, extra)) forget(el);
      fixDays(list);
      list.scrollTop -= height - list.scrollHeight; // what the reader sees does not move
      hasOlder = true;
    } else {
      while (extra-- > 0) forget(els.pop());
      for (const el of pendingEls()) el.remove(); // they come back with the newest end
      byClientId.clear();
      atNewest = false;
    }
  }

  function toBottom() {
    list.scrollTop = list.scrollHeight;
    following = true;
  }

  function afterChange() {
    fixDays(list);
    const empty = list.querySelector(":scope > li.empty");
    if (list.querySelector(":scope > li.message")) empty?.remove();
    else if (!empty && !hasOlder) list.appendChild(h("li", { class: "empty" }, t("room.empty")));
    older.hidden = !hasOlder;
    renderJump();
  }

  // Shown while new messages wait below, or while the list does not reach the newest message.
  function renderJump() {
    jump.hidden = !(unseen > 0 || !atNewest);
    jump.textContent = unseen ? t("chat.new_messages", { n: unseen }) : t("chat.latest");
  }

  function nearBottom() {
    return list.scrollHeight - list.scrollTop - list.clientHeight < FOLLOWING;
  }

  // -- loading pages ------------------------------------------------------------------------

  async function page(query) {
    return api("GET", `/api/rooms/${room.id}/messages?${query}`);
  }

  function pendingFrames() {
    for (const frame of live.pendingFor(channel)) showPending(frame);
  }

  // The newest messages (or, with `around`, the page around one message), subscribing from there.
  async function load({ around = null } = {}) {
    const request = around ? page(`around=${around}&limit=${PAGE}`) : page(`limit=${FIRST_PAGE}`);
    loading = request;
    list.setAttribute("aria-busy", "true");
    try {
      let found;
      try {
        found = await request;
      } catch (err) {
        if (!around) throw err;
        fail(err); // a message gone (or never there): the room as it is now
        highlighted = null;
        return load();
      }
      if (disposed) return;
      clear(list);
      byId.clear();
      byClientId.clear();
      placeAtEnd(found.messages, "bottom");
      hasOlder = found.more;
      atNewest = !around || !found.newer;
      unseen = 0;
      if (atNewest) pendingFrames();
      afterChange();
      const top = found.messages.length ? found.messages[0].seq : 0;
      // From the newest message shown: later changes come as events. Around a message, the
      // room's later messages are paged in as the reader scrolls: follow from now on.
      const ok = await (around && !atNewest ? live.subscribe(channel) : live.subscribe(channel, top));
      if (ok?.resync) return load();
      const target = around ? byId.get(around)?.el : null;
      if (target) {
        following = false;
        list.scrollTop = Math.max(0, target.offsetTop - (list.clientHeight - target.offsetHeight) / 2);
        target.focus({ preventScroll: true });
      } else {
        toBottom();
        markRead();
      }
      renderJump();
      loading = null;
      await fill();
    } catch (err) {
      fail(err);
    } finally {
      if (loading === request) loading = null;
      list.removeAttribute("aria-busy");
    }
  }

  // A list that does not fill its box cannot be scrolled up: load older pages until it does.
  async function fill() {
    if (hasOlder && list.scrollHeight <= list.clientHeight) await loadOlder();
  }

  async function loadOlder() {
    if (loading || !hasOlder) return;
    const [oldest] = ends();
    if (oldest === null) return;
    const request = page(`before=${oldest}&limit=${PAGE}`);
    loading = request;
    older.disabled = true;
    list.setAttribute("aria-busy", "true"); // a page of old messages is not news to announce
    try {
      const found = await request;
      if (disposed || ends()[0] !== oldest) return;
      const height = list.scrollHeight;
      const top = list.scrollTop;
      placeAtEnd(found.messages, "top");
      hasOlder = found.more;
      fixDays(list);
      list.scrollTop = top + list.scrollHeight - height; // the reader stays where they were
      trim("bottom");
      afterChange();
    } catch (err) {
      fail(err);
    } finally {
      if (loading === request) loading = null;
      older.disabled = false;
      list.removeAttribute("aria-busy");
    }
  }

  async function loadNewer() {
    if (loading || atNewest) return;
    const [, newest] = ends();
    if (newest === null) return load();
    const request = page(`after=${newest}&limit=${PAGE}`);
    loading = request;
    list.setAttribute("aria-busy", "true");
    try {
      const found = await request;
      if (disposed || ends()[1] !== newest) return;
      placeAtEnd(found.messages, "bottom");
      atNewest = !found.newer;
      if (atNewest) {
        unseen = 0;
        pendingFrames();
      }
      fixDays(list);
      trim("top");
      afterChange();
    } catch (err) {
      fail(err);
    } finally {
      if (loading === request) loading = null;
      list.removeAttribute("aria-busy");
    }
  }

  // The "new messages ↓" button: to the newest message, loading it first when the list let it go.
  async function toLatest() {
    highlighted = null;
    if (!atNewest) await load();
    toBottom();
    unseen = 0;
    renderJump();
    markRead();
    (view.el.querySelector("#composer") || list).focus({ preventScroll: true });
  }

  // -- reading ------------------------------------------------------------------------------

  // What the reader has seen is read: on the server (for their other devices, and the menu),
  // at most once a second.
  function markRead() {
    if (!atNewest || !following || !pageSeen()) return;
    roomRead(room.id, newestId());
    clearTimeout(readTimer);
    if (outside) return; // not a member: nothing of theirs to keep
    readTimer = setTimeout(() => {
      const [, newest] = ends();
      if (newest !== null && !disposed) api("POST", `/api/rooms/${room.id}/read`, { seq: newest }).catch(() => {});
    }, 1000);
  }

  function onVisible() {
    if (pageSeen()) markRead();
  }

  list.addEventListener("scroll", () => {
    following = atNewest && nearBottom();
    if (following && unseen) unseen = 0;
    renderJump();
    if (following) markRead();
    if (list.scrollTop < NEAR && hasOlder) loadOlder();
    else if (list.scrollHeight - list.scrollTop - list.clientHeight < NEAR && !atNewest) loadNewer();
  });

  // -- live ---------------------------------------------------------------------------------

  function arrived(e) {
    const m = e.message;
    if (e.kind === "message.posted" && m.author?.id != null) {
      typing.delete(m.author.id); // their message is here: they are no longer typing
      renderTyping();
    }
    const [, newest] = ends();
    const isNew = !byId.has(m.id) && (newest === null || m.seq > newest);
    if (byId.has(m.id) || (m.client_id && byClientId.has(m.client_id))) {
      if (editing === m.id && m.state !== "visible") editing = null;
      if (editing === m.id && e.kind === "message.edited") editing = null;
      place(m);
      afterChange();
      if (following) toBottom();
    } else if (isNew && atNewest) {
      place(m);
      afterChange();
      if (following || mine(m)) toBottom();
      else unseen += 1;
      renderJump();
    } else if (isNew) {
      unseen += 1; // beyond the end of the list: the button brings it
      renderJump();
    }
    if (isNew && e.kind === "message.posted" && !mine(m)) {
      if (pageSeen() && following) markRead();
      else if (!pageSeen()) roomMissed(room.id, m.id);
      if (m.state === "visible" && (mentions(m.text) || mentions(m.title))) {
        alertUser(t("chat.notify_mention", { name: m.author?.name || t("author.pupil"), room: known.name }), `m:${m.id}`);
      }
    }
  }

  function showPending(frame) {
    if (byClientId.has(frame.client_id)) return;
    const el = render({ text: frame.text, title: frame.title, state: "visible", author: { ...state.me.user, role: null } }, true);
    byClientId.set(frame.client_id, el);
    list.querySelector(":scope > li.empty")?.remove();
    list.appendChild(el);
    fixDays(list);
    toBottom(); // one's own words always come into view
    renderJump();
  }

  // -- acting on messages -------------------------------------------------------------------

  function rerender(id) {
    const known = byId.get(id);
    if (known) known.el.replaceWith(byId.get(id).el = render(known.message));
  }

  function startEdit(m) {
    const was = editing;
    editing = m.id;
    if (was) rerender(was);
    rerender(m.id);
    const box = byId.get(m.id)?.el.querySelector("textarea");
    if (box) {
      box.focus();
      box.setSelectionRange(box.value.length, box.value.length);
    }
  }

  function cancelEdit(m) {
    editing = null;
    rerender(m.id);
    // Back on Edit — or, where the actions are behind "⋯" (a touch screen), on that button.
    const el = byId.get(m.id)?.el;
    const edit = el?.querySelector("[data-action=edit]");
    (edit?.offsetParent ? edit : el?.querySelector(".more") || el)?.focus();
  }

  async function saveEdit(m, text) {
    if (!text || text === m.text) return cancelEdit(m);
    try {
      await live.request({ type: "edit", channel, id: m.id, text });
      if (editing === m.id) cancelEdit({ ...m }); // its event brings the new words
    } catch (err) {
      fail(err);
    }
  }

  async function report(m) {
    const answer = await dialog({ title: t("action.report"), fields: [field(t("prompt.report"), "note", { multiline: true, maxlength: state.me.limits?.max_note_chars || 500 })], confirm: t("action.report"), testid: "report-dialog" });
    if (answer === null) return;
    try {
      await live.request({ type: "report", channel, id: m.id, note: answer.note });
      reported.add(m.id);
      rerender(m.id);
      toast(t("done.report"));
    } catch (err) {
      fail(err);
    }
  }

  async function moderate(type, m) {
    const answer = await dialog({ title: t(`action.${type}`), fields: [field(t("prompt.reason"), "reason", { multiline: true, maxlength: state.me.limits?.max_note_chars || 500 })], confirm: t(`action.${type}`), danger: type === "delete", testid: "reason-dialog" });
    if (answer === null) return;
    try {
      await live.request({ type, channel, id: m.id, reason: answer.reason });
    } catch (err) {
      fail(err);
    }
  }

  async function deleteOwn(m) {
    if (!(await confirmed(t("action.delete"), t("confirm.delete_own"), t("action.delete")))) return;
    try {
      await live.request({ type: "delete", channel, id: m.id });
    } catch (err) {
      fail(err);
    }
  }

  // The moderation screen's dialog (how long, where, why), offering only where that member
  // writes (by their badge) and the whole project.
  async function mute(m) {
    const spaceId = project()?.id;
    if (!spaceId) return;
    await muteDialog(spaceId, { user: m.author, scope: known.area, scopes: memberScopes(spaceId, m.author.role) });
  }

  // -- who is here, who is typing -----------------------------------------------------------

  function renderPresence() {
    const others = [...people.values()];
    // A name opens that member's profile (those one may read: the server decides); a pupil shown
    // to a visitor has no id, and no profile to open.
    const entry = (p) => (p.id && space && p.id !== state.me.user.id
      ? h("button", { type: "button", class: "link", "data-action": "profile", onclick: () => showProfile(space.id, p.id) }, p.name)
      : p.name);
    replace(presenceList, others.length ? others.map((p) => h("li", { "data-user": p.id }, entry(p))) : h("li", { class: "nobody" }, t("room.nobody")));
  }

  function renderTyping() {
    const now = Date.now();
    for (const [id, x] of typing) if (x.until <= now) typing.delete(id);
    const names = [...typing.values()].map((x) => x.name);
    typingLine.textContent = names.length ? t("room.typing", { names: formatList(names) }) : "";
    clearTimeout(typingTimer);
    if (names.length) typingTimer = setTimeout(renderTyping, 1000);
  }

  // -- the message box, or why there is none ------------------------------------------------

  const composerArea = h("div", { class: "composer-area", "data-testid": "composer-area" });
  let mode = null; // what the area shows now ("post", "archived|", "muted|<until>"…): redrawn only when it changes
  let muteTimer = null;

  function composerMode() {
    if (ended) return "ended";
    if (!here()) return "loading";
    if (!rights().includes("post")) return "readonly";
    if (project()?.closed) return "closed";
    if (here().archived) return "archived";
    if (mutedUntil()) return "muted";
    return "post";
  }

  // The box, or the notice in its place. A welcome that changes nothing here (a reconnect, a
  // right elsewhere) leaves the box as it is — its words, the caret, the focus.
  function renderComposer() {
    const next = composerMode();
    const until = next === "muted" ? mutedUntil() : null;
    clearTimeout(muteTimer);
    if (until) muteTimer = setTimeout(renderComposer, Math.min(Date.parse(until) - Date.now() + 250, LONGEST_WAIT));
    const key = `${next}|${until || ""}`;
    if (key === mode) return;
    mode = key;
    const hadFocus = composerArea.contains(document.activeElement);
    replace(composerArea, next === "post" ? composer() : notice(next, until));
    if (hadFocus) (composerArea.querySelector("#composer") || composerArea.querySelector(".readonly"))?.focus();
  }

  // Why the viewer cannot write here, and that their unsent words are kept for when they can.
  function notice(kind, until) {
    const lines = [];
    if (kind === "readonly") lines.push(t(outside ? "room.readonly_moderator" : "room.readonly"));
    if (kind === "closed") lines.push(t("room.readonly_closed"));
    if (kind === "closed" && here()?.archived) lines.push(t("room.readonly_archived"));
    if (kind === "archived") lines.push(t("room.readonly_archived"));
    if (kind === "muted") lines.push(t("room.muted", { until: formatDateTime(until) }));
    if (kind === "ended") lines.push(t("room.gone"));
    if (kind === "loading") lines.push(t("room.loading"));
    const draft = kind !== "readonly" && (localStorage.getItem(draftKey()) || "").trim();
    return h("div", { class: `readonly ${kind}`, "data-testid": "readonly", "data-state": kind, tabindex: "-1" },
      lines.map((line) => h("p", {}, line)),
      draft ? h("p", { class: "draft-kept", "data-testid": "draft-kept" }, t("room.draft_kept")) : null);
  }

  function composer() {
    const text = h("textarea", {
      id: "composer", rows: 2, maxlength: state.me.limits?.max_text_chars || 4000, "aria-label": t("composer.label"),
      "aria-describedby": "composer-hint",
    });
    const title = known.kind === "journal"
      ? h("input", { id: "composer-title", "aria-label": t("composer.title"), placeholder: t("composer.title") }) : null;
    const form = h("form", { class: "composer" }, title, text, h("button", { type: "submit" }, t("composer.send")),
      h("p", { class: "hint", id: "composer-hint" }, t("chat.hint")));
    // The draft is kept while it is being typed: a dropped socket, a reload, or the box taken
    // away for a while (the room archived, the project closed, a mute) never loses it.
    text.value = localStorage.getItem(draftKey()) || "";
    text.addEventListener("input", () => {
      if (text.value) localStorage.setItem(draftKey(), text.value);
      else localStorage.removeItem(draftKey());
      const now = Date.now();
      if (now - lastTyping > 3000 && state.live.ready) {
        lastTyping = now;
        live.request({ type: "typing", channel }).catch(() => {});
      }
    });
    text.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const value = text.value.trim();
      if (!value) return;
      const frame = { type: "post", channel, text: value, client_id: clientId() };
      if (title && title.value.trim()) frame.title = title.value.trim();
      if (known.kind === "journal" && !frame.title) {
        title?.focus();
        return;
      }
      text.value = "";
      if (title) title.value = "";
      localStorage.removeItem(draftKey());
      lastTyping = 0;
      if (!atNewest) {
        highlighted = null;
        await load(); // one's own message shows among the newest
      }
      showPending(frame);
      try {
        await live.post(frame);
      } catch (err) {
        if (err.code === "network" || err.code === "unavailable") return; // kept; sent again on reconnect
        byClientId.get(frame.client_id)?.remove();
        byClientId.delete(frame.client_id);
        fixDays(list);
        // Refused: the words are given back — kept, even if the box goes away meanwhile.
        localStorage.setItem(draftKey(), value);
        if (text.isConnected && !text.value) text.value = value;
        if (err.code === "muted" && err.until) {
          refusedMute = { scope: err.scope, until: err.until };
          renderComposer(); // says until when, in the box's place
        } else {
          fail(err);
          renderComposer();
        }
      }
    });
    return form;
  }

  // -- alerts (off unless asked for) --------------------------------------------------------

  function alerts() {
    const notify = notifySupported() ? h("button", {
      type: "button", class: "toggle", "data-testid": "notify", "aria-pressed": String(notifyOn()),
      onclick: async () => {
        const on = await toggleNotify();
        if (on === null) toast(t("chat.notify_refused"));
        notify.setAttribute("aria-pressed", String(notifyOn()));
      },
    }, t("chat.notify")) : null;
    const sound = h("button", {
      type: "button", class: "toggle", "data-testid": "sound", "aria-pressed": String(soundOn()),
      onclick: () => sound.setAttribute("aria-pressed", String(toggleSound())),
    }, t("chat.sound"));
    return h("section", { class: "alerts", "aria-labelledby": "alerts-title" },
      h("h2", { id: "alerts-title" }, t("chat.alerts")),
      h("p", { class: "hint" }, t("chat.alerts_what")),
      notify, sound);
  }

  // -- the room itself: its name and state, its end ------------------------------------------

  const title = h("h1", {});
  const projectLine = outside ? h("p", { class: "room-project", "data-testid": "room-project" }) : null;

  function renderHead() {
    const r = here() || known;
    replace(title, r.name || t("room.loading"), r.area && !sameName(r.name || "", t(`area.${r.area}`)) ? h("span", { class: "area" }, t(`area.${r.area}`)) : null,
      r.archived ? h("span", { class: "badge", "data-testid": "room-archived" }, t("nav.archived")) : null,
      project()?.closed ? h("span", { class: "badge", "data-testid": "project-closed" }, t("nav.closed")) : null);
    list.setAttribute("aria-label", r.name || channel);
    if (projectLine) projectLine.textContent = info ? t("room.in_project", { project: info.space.name }) : "";
  }

  // The room is not there any more for this viewer: say why, and go back to Start (platform
  // staff with no project: their own screen).
  function leave(text) {
    if (left || disposed) return;
    left = true;
    clearTimeout(endTimer);
    toast(text);
    location.hash = state.me.user.platform_role && !state.me.spaces.length ? "#/platform" : "#/home";
  }

  // Gone from the welcome: the viewer left the project (or was removed), their role there
  // changed, or — neither — a teacher deleted the room.
  function gone() {
    const now = currentSpace(space.id);
    if (!now) return leave(t("room.not_member", { project: space.name }));
    if (now.role !== role) return leave(t("room.role_changed", { name: known.name }));
    return leave(t("room.deleted", { name: known.name }));
  }

  view.render = () => {
    if (view.el) { // the language changed: every line again in the new one
      for (const id of [...byId.keys()]) rerender(id);
      fixDays(list);
    }
    older.textContent = t("room.older");
    mode = null; // the box, or the notice, in the new language
    view.el = replace(view.el || h("section", { class: "room", "data-testid": "room", "data-channel": channel }),
      h("div", { class: "room-head" },
        title,
        // On a phone, who is here and the alerts take the screen's place on demand.
        h("button", {
          type: "button", class: "side-toggle secondary", "aria-controls": `room-side-${room.id}`, "aria-expanded": "false",
          onclick: (ev) => {
            const open = view.el.classList.toggle("show-side");
            ev.currentTarget.setAttribute("aria-expanded", String(open));
            ev.currentTarget.textContent = open ? t("room.back_to_messages") : t("room.here");
          },
        }, t("room.here")),
        projectLine),
      h("div", { class: "room-body" },
        h("div", { class: "conversation" }, older, h("div", { class: "scroller" }, list, jump), typingLine, composerArea),
        h("aside", { id: `room-side-${room.id}` }, h("h2", {}, t("room.here")), presenceList, alerts())));
    renderHead();
    renderComposer();
    renderJump();
  };
  view.render();
  view.start = async () => {
    roomOpened(room.id);
    document.addEventListener("visibilitychange", onVisible);
    if (outside) {
      try {
        info = await api("GET", `/api/rooms/${room.id}`);
      } catch (err) {
        if (!disposed) leave(errorText(err));
        return;
      }
      if (disposed) return;
      known = info;
      renderHead();
      renderComposer();
    }
    return load({ around: messageId });
  };
  view.dispose = () => {
    disposed = true;
    clearTimeout(readTimer);
    clearTimeout(typingTimer);
    clearTimeout(muteTimer);
    clearTimeout(endTimer);
    document.removeEventListener("visibilitychange", onVisible);
    roomClosed(room.id);
    return live.unsubscribe(channel);
  };
  // A fresh welcome: the room's state, the viewer's rights and mutes as they are now.
  view.rightsChanged = () => {
    if (outside || left) return; // a platform moderator's room is in no welcome: its `room` frames tell
    const now = here();
    if (!now) return gone();
    if (Array.isArray(project()?.mutes)) refusedMute = null; // the welcome lists the mutes in force
    known = now;
    role = project().role;
    renderHead();
    renderComposer();
    for (const id of [...byId.keys()]) rerender(id);
  };
  // The server ended the subscription (the shell has said so): the welcome that follows says why
  // — a deleted room is in it no more. Answers true: this screen tells the reader itself.
  view.channelEnded = (ch) => {
    if (ch !== channel || left) return false;
    ended = true;
    renderComposer();
    if (outside) leave(t("room.deleted", { name: known.name }));
    else if (!here()) gone();
    else endTimer = setTimeout(() => (here() ? leave(t("room.gone")) : gone()), 3000);
    return true;
  };
  view.onEvent = (e) => {
    if (e.channel === channel && e.message) arrived(e);
  };
  view.onFrame = (f) => {
    if (f.channel !== channel) return;
    if (f.type === "presence") {
      if (f.members) {
        people.clear();
        for (const p of f.members) people.set(p.id, p);
      }
      for (const p of f.joined || []) people.set(p.id, p);
      for (const p of f.left || []) people.delete(p.id);
      renderPresence();
    } else if (f.type === "typing") {
      typing.set(f.user.id, { name: f.user.name, until: Date.now() + 4000 });
      renderTyping();
    } else if (f.type === "room" && f.room && outside && info) {
      // Archived, unarchived or renamed (a member's welcome says the same, right after).
      info = { ...info, ...f.room };
      known = info;
      renderHead();
      renderComposer();
    }
  };
  renderPresence();
  return view;
}
