// A room: its messages (newest at the bottom, older ones loaded when scrolling up), who is here
// and who is typing, the message box where the role may post, and the actions each role has on a
// message (report; hide, show again, delete and mute for those who moderate).

import { api, clear, h, replace } from "../dom.js";
import { formatDateTime, formatTime, t } from "../i18n.js";
import { clientId } from "../live.js";
import { currentRoom, currentSpace, state } from "../state.js";
import { confirmed, dialog, fail, field, toast } from "../ui.js";

export function roomView(space, room) {
  const live = state.live;
  const list = h("ol", { class: "messages", "aria-live": "polite", "aria-label": room.name, "data-testid": "messages" });
  const here = h("ul", { class: "presence", "aria-label": t("room.here"), "data-testid": "presence" });
  const typingLine = h("p", { class: "typing", "aria-live": "polite", "data-testid": "typing" });
  const older = h("button", { type: "button", class: "older", hidden: true }, t("room.older"));
  const byId = new Map(); // message id -> {el, message}
  const byClientId = new Map(); // optimistic posts
  const people = new Map();
  const typing = new Map(); // user id -> {name, until}
  let oldestSeq = null;
  let lastTyping = 0;
  const view = { el: null };

  const rights = () => currentRoom(space.id, room.id)?.rights || [];
  // An archived room, like a closed project, is read-only for everyone (welcome's `archived`, `closed`).
  const canPost = () => rights().includes("post") && !currentRoom(space.id, room.id)?.archived && !currentSpace(space.id)?.closed;
  const moderates = () => rights().includes("moderate");

  // A pupil shown to a visitor has no name (docs/protocol.md, "What a visitor sees of pupils").
  function authorName(author) {
    if (!author) return state.me.user.name;
    if (author.name) return author.name;
    return author.school ? t("author.pupil_of", { school: author.school }) : t("author.pupil");
  }

  function badge(role) {
    return role ? h("span", { class: `badge badge-${role}` }, t(`badge.${role}`)) : null;
  }

  function renderMessage(m, pending = false) {
    const mine = m.author?.id === state.me.user.id;
    const body = m.state === "hidden" && m.text != null // its words reach those who moderate the room only
      ? h("span", { class: "text hidden-text" }, h("span", { class: "hidden-label" }, t("moderation.hidden_label")), " ", m.text)
      : m.state === "hidden" ? h("em", {}, t("message.hidden"))
      : m.state === "deleted" ? h("em", {}, t("message.deleted"))
        : h("span", { class: "text" }, m.text);
    const actions = h("span", { class: "actions" });
    if (!pending && m.state === "visible" && !mine) {
      actions.appendChild(h("button", { type: "button", "data-action": "report", onclick: () => report(m) }, t("action.report")));
    }
    if (!pending && moderates() && !mine) {
      if (m.state === "visible") actions.appendChild(h("button", { type: "button", "data-action": "hide", onclick: () => moderate("hide", m) }, t("action.hide")));
      if (m.state === "hidden") actions.appendChild(h("button", { type: "button", "data-action": "unhide", onclick: () => moderate("unhide", m) }, t("action.unhide")));
      if (m.state !== "deleted") actions.appendChild(h("button", { type: "button", "data-action": "delete", onclick: () => moderate("delete", m) }, t("action.delete")));
      actions.appendChild(h("button", { type: "button", "data-action": "mute", onclick: () => mute(m) }, t("action.mute")));
    }
    if (!pending && mine && m.state === "visible") {
      actions.appendChild(h("button", { type: "button", "data-action": "delete", onclick: () => deleteOwn(m) }, t("action.delete")));
    }
    return h("li", { class: `message ${m.state}${pending ? " pending" : ""}`, "data-id": m.id ?? "", "data-state": m.state },
      h("span", { class: "author" }, authorName(m.author)),
      badge(m.author?.role),
      m.author?.school && m.author?.name ? h("span", { class: "school" }, m.author.school) : null,
      h("time", { datetime: m.created_at || "" }, pending ? t("message.sending") : formatTime(m.created_at)),
      m.title && m.state === "visible" ? h("strong", { class: "title" }, m.title) : null,
      body,
      m.edited_at && m.state === "visible" ? h("span", { class: "edited" }, t("message.edited")) : null,
      actions);
  }

  function show(m, { atTop = false } = {}) {
    const known = byId.get(m.id);
    // An event never carries a hidden message's words: a moderator keeps those already shown.
    if (known && m.state === "hidden" && m.text == null && moderates()) m = { ...m, text: known.message.text };
    const el = renderMessage(m);
    if (known) {
      known.el.replaceWith(el);
    } else {
      const optimistic = m.client_id && byClientId.get(m.client_id);
      if (optimistic) {
        optimistic.replaceWith(el);
        byClientId.delete(m.client_id);
      } else if (atTop) {
        list.insertBefore(el, list.firstChild);
      } else {
        const following = list.scrollHeight - list.scrollTop - list.clientHeight < 60;
        list.appendChild(el);
        if (following) list.scrollTop = list.scrollHeight; // keep up with the conversation
      }
    }
    byId.set(m.id, { el, message: m });
    if (oldestSeq === null || m.seq < oldestSeq) oldestSeq = m.seq;
  }

  function showPending(frame) {
    if (byClientId.has(frame.client_id)) return;
    const el = renderMessage({ text: frame.text, title: frame.title, state: "visible", author: { ...state.me.user, role: null } }, true);
    byClientId.set(frame.client_id, el);
    list.appendChild(el);
  }

  async function load() {
    try {
      const page = await api("GET", `/api/rooms/${room.id}/messages?limit=50`);
      clear(list);
      byId.clear();
      oldestSeq = null;
      const top = page.messages.length ? page.messages[0].seq : 0;
      for (const m of page.messages.slice().reverse()) show(m);
      older.hidden = !page.more;
      for (const frame of live.pendingFor(room.channel)) showPending(frame);
      const ok = await live.subscribe(room.channel, top);
      if (ok?.resync) return load();
      list.scrollTop = list.scrollHeight;
    } catch (err) {
      fail(err);
    }
  }

  // Scrolling to the top loads the older messages, as the button does (for the keyboard).
  list.addEventListener("scroll", () => {
    if (list.scrollTop < 40 && !older.hidden && !older.disabled) older.click();
  });

  older.addEventListener("click", async () => {
    older.disabled = true;
    try {
      const page = await api("GET", `/api/rooms/${room.id}/messages?limit=50&before=${oldestSeq}`);
      const before = list.scrollHeight;
      for (const m of page.messages) show(m, { atTop: true });
      list.scrollTop += list.scrollHeight - before; // the reader stays where they were
      older.hidden = !page.more;
    } catch (err) {
      fail(err);
    } finally {
      older.disabled = false;
    }
  });

  async function report(m) {
    const answer = await dialog({ title: t("action.report"), fields: [field(t("prompt.report"), "note", { multiline: true, maxlength: state.me.limits?.max_note_chars || 500 })], confirm: t("action.report"), testid: "report-dialog" });
    if (answer === null) return;
    const note = answer.note;
    try {
      await live.request({ type: "report", channel: room.channel, id: m.id, note });
      toast(t("done.report"));
    } catch (err) {
      fail(err);
    }
  }

  async function moderate(type, m) {
    const answer = await dialog({ title: t(`action.${type}`), fields: [field(t("prompt.reason"), "reason", { multiline: true, maxlength: state.me.limits?.max_note_chars || 500 })], confirm: t(`action.${type}`), danger: type === "delete", testid: "reason-dialog" });
    if (answer === null) return;
    const reason = answer.reason;
    try {
      await live.request({ type, channel: room.channel, id: m.id, reason });
    } catch (err) {
      fail(err);
    }
  }

  async function deleteOwn(m) {
    if (!(await confirmed(t("action.delete"), t("confirm.delete_own"), t("action.delete")))) return;
    try {
      await live.request({ type: "delete", channel: room.channel, id: m.id });
    } catch (err) {
      fail(err);
    }
  }

  async function mute(m) {
    const answer = await dialog({ title: t("action.mute"), fields: [field(t("prompt.reason"), "reason", { multiline: true, maxlength: state.me.limits?.max_note_chars || 500 })], confirm: t("action.mute"), testid: "reason-dialog" });
    if (answer === null) return;
    const reason = answer.reason;
    try {
      const ok = await live.request({ type: "mute", space: space.id, user_id: m.author.id, scope: room.area, minutes: 1440, reason });
      toast(t("done.mute", { until: formatDateTime(ok.until) }));
    } catch (err) {
      fail(err);
    }
  }

  function renderPresence() {
    const others = [...people.values()];
    replace(here, others.length ? others.map((p) => h("li", { "data-user": p.id }, p.name)) : h("li", { class: "nobody" }, t("room.nobody")));
  }

  function renderTyping() {
    const now = Date.now();
    const names = [...typing.values()].filter((x) => x.until > now).map((x) => x.name);
    typingLine.textContent = names.length ? t("room.typing", { names: names.join(", ") }) : "";
  }

  function composer() {
    if (!canPost()) return h("p", { class: "readonly" }, t("room.readonly"));
    const text = h("textarea", { id: "composer", rows: 2, maxlength: state.me.limits?.max_text_chars || 4000, "aria-label": t("composer.label") });
    const title = room.kind === "journal"
      ? h("input", { id: "composer-title", "aria-label": t("composer.title"), placeholder: t("composer.title") }) : null;
    const form = h("form", { class: "composer" }, title, text, h("button", { type: "submit" }, t("composer.send")));
    // The draft is kept while it is being typed: a dropped socket (or a reload) never loses it.
    const draftKey = `twinhub.draft.${room.channel}`;
    text.value = localStorage.getItem(draftKey) || "";
    text.addEventListener("input", () => {
      localStorage.setItem(draftKey, text.value);
      const now = Date.now();
      if (now - lastTyping > 3000 && state.live.ready) {
        lastTyping = now;
        live.request({ type: "typing", channel: room.channel }).catch(() => {});
      }
    });
    text.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey) {
        ev.preventDefault();
        form.requestSubmit();
      }
    });
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const value = text.value.trim();
      if (!value) return;
      const frame = { type: "post", channel: room.channel, text: value, client_id: clientId() };
      if (title && title.value.trim()) frame.title = title.value.trim();
      if (room.kind === "journal" && !frame.title) {
        title?.focus();
        return;
      }
      text.value = "";
      if (title) title.value = "";
      localStorage.removeItem(draftKey);
      showPending(frame);
      try {
        await live.post(frame);
      } catch (err) {
        if (err.code === "network" || err.code === "unavailable") return; // kept; sent again on reconnect
        byClientId.get(frame.client_id)?.remove();
        byClientId.delete(frame.client_id);
        text.value = value; // refused: give the words back
        fail(err);
      }
    });
    return form;
  }

  view.render = () => {
    view.el = replace(view.el || h("section", { class: "room", "data-testid": "room", "data-channel": room.channel }),
      h("h1", {}, room.name, h("span", { class: "area" }, t(`area.${room.area}`))),
      h("div", { class: "room-body" },
        h("div", { class: "conversation" }, older, list, typingLine, composer()),
        h("aside", {}, h("h2", {}, t("room.here")), here)));
  };
  view.render();
  view.start = () => load();
  view.dispose = () => live.unsubscribe(room.channel);
  view.rightsChanged = () => {
    if (!currentRoom(space.id, room.id)) return;
    const composerEl = view.el.querySelector(".composer, .readonly");
    composerEl?.replaceWith(composer());
    for (const { el, message } of byId.values()) el.replaceWith(byId.get(message.id).el = renderMessage(message));
  };
  view.channelEnded = (channel) => {
    if (channel === room.channel) replace(list, h("li", { class: "ended" }, t("error.forbidden")));
  };
  view.onEvent = (e) => {
    if (e.channel !== room.channel) return;
    if (e.message) show(e.message);
  };
  view.onFrame = (f) => {
    if (f.channel !== room.channel) return;
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
      setTimeout(renderTyping, 4100);
    }
  };
  renderPresence();
  return view;
}
