// The TwinHub page: log in, the projects with their rooms, chat with presence and typing, the
// journal, TwinMail, the live activity feed and — for teacher admins and moderators — the live
// moderation queue. Plain ES modules, no build step, no request outside this server.

import { api, clear, h, replace } from "./dom.js";
import { LANGS, errorText, formatTime, getLang, setLang, t } from "./i18n.js";
import { Live, clientId } from "./live.js";

const app = document.getElementById("app");
const state = { me: null, live: null, view: null, status: "connecting", route: null };

// -- start ----------------------------------------------------------------------------------

async function boot() {
  setLang(getLang());
  try {
    start(await api("GET", "/api/me"));
  } catch {
    showLogin();
  }
}

function showLogin(notice) {
  if (state.live) state.live.stop();
  state.live = null;
  const error = h("p", { class: "error", role: "alert", id: "login-error" }, notice || "");
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h("form", { class: "login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, t("login.title")),
    h("label", { for: "username" }, t("login.username")), username,
    h("label", { for: "password" }, t("login.password")), password,
    h("button", { type: "submit" }, t("login.submit")),
    error,
    langButton(() => showLogin(notice)),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await api("POST", "/api/login", { username: username.value.trim(), password: password.value });
      start(await api("GET", "/api/me"));
    } catch (err) {
      error.textContent = err.code === "unauthenticated" ? t("login.failed") : errorText(err);
    }
  });
  replace(app, h("main", { class: "login-page" }, form));
  username.focus();
}

function langButton(rerender) {
  const other = LANGS.find((l) => l !== getLang());
  return h("button", {
    type: "button", class: "lang", lang: other, "data-testid": "lang",
    onclick: () => { setLang(other); rerender(); },
  }, t("lang.switch"));
}

function start(me) {
  state.me = me;
  state.live = new Live({
    onStatus: (s) => { state.status = s; renderStatus(); },
    onWelcome: (w) => { state.me = w; followMailboxes(); renderNav(); state.view?.rightsChanged?.(); },
    onEvent: (e) => routeEvent(e),
    onFrame: (f) => routeFrame(f),
    onSessionEnded: () => showLogin(t("login.expired")),
  });
  renderShell();
  state.live.start();
  const first = me.spaces[0];
  const firstRoom = first?.rooms.find((r) => r.kind === "room") || first?.rooms[0];
  if (firstRoom) open(roomView(first, firstRoom), { focus: false });
}

// -- the shell ------------------------------------------------------------------------------

const shell = {};

function renderShell() {
  shell.status = h("span", { class: "status", role: "status", "aria-live": "polite", "data-testid": "status" });
  shell.nav = h("nav", { "aria-label": t("nav.projects") });
  shell.main = h("main", { id: "main", tabindex: "-1" });
  shell.toasts = h("div", { class: "toasts", role: "alert", "aria-live": "assertive", "data-testid": "toasts" });
  const header = h("header", {},
    h("span", { class: "brand" }, t("app.title")),
    h("span", { class: "who" }, `${state.me.user.name} — ${state.me.user.school || ""}`),
    shell.status,
    langButton(() => { renderShell(); renderNav(); state.view?.render?.(); }),
    h("button", { type: "button", onclick: logout }, t("logout")),
  );
  replace(app, header, h("div", { class: "layout" }, shell.nav, shell.main), shell.toasts);
  renderStatus();
  renderNav();
  if (state.view) replace(shell.main, state.view.el);
}

function renderStatus() {
  if (!shell.status) return;
  shell.status.textContent = t(`status.${state.status}`);
  shell.status.dataset.state = state.status;
}

async function logout() {
  await api("POST", "/api/logout").catch(() => {});
  showLogin();
}

function renderNav() {
  if (!shell.nav) return;
  const items = [];
  for (const space of state.me.spaces) {
    const rooms = space.rooms.map((room) => h("li", {},
      h("button", { type: "button", class: "link", "data-channel": room.channel, onclick: () => open(roomView(space, room)) },
        room.kind === "journal" ? room.name : `# ${room.name}`,
        h("span", { class: "area" }, t(`area.${room.area}`)),
        room.archived ? h("span", { class: "badge" }, t("nav.archived")) : null)));
    const unread = space.mailbox?.unread?.inbox || 0;
    items.push(h("section", { class: "space" },
      h("h2", {}, space.name, space.closed ? h("span", { class: "badge" }, t("nav.closed")) : null),
      h("h3", {}, t("nav.rooms")),
      h("ul", {}, rooms),
      h("ul", {},
        space.mailbox ? h("li", {}, h("button", { type: "button", class: "link", "data-testid": "nav-mail", onclick: () => open(mailView(space)) },
          t("nav.mail"), unread ? h("span", { class: "count", "data-testid": "unread" }, t("mail.unread", { n: unread })) : null)) : null,
        h("li", {}, h("button", { type: "button", class: "link", onclick: () => open(feedView(space)) }, t("nav.feed"))),
        space.moderation ? h("li", {}, h("button", { type: "button", class: "link", "data-testid": "nav-moderation", onclick: () => open(moderationView(space)) }, t("nav.moderation"))) : null,
      )));
  }
  replace(shell.nav, items);
}

function open(view, { focus = true } = {}) {
  state.view?.dispose?.();
  state.view = view;
  replace(shell.main, view.el);
  view.start?.();
  if (focus) shell.main.focus(); // keyboard and screen-reader users land on what they opened
}

function toast(text) {
  const item = h("p", {}, text);
  shell.toasts.appendChild(item);
  setTimeout(() => item.remove(), 6000);
}

function fail(err) {
  toast(errorText(err));
}

function routeEvent(frame) {
  if (frame.channel.startsWith("mail:")) mailboxEvent(frame);
  state.view?.onEvent?.(frame);
}

function routeFrame(frame) {
  if (frame.type === "error" && frame.channel) {
    toast(errorText(frame)); // a subscription ended: rights changed
    state.view?.channelEnded?.(frame.channel);
    return;
  }
  if (frame.type === "error") {
    toast(errorText(frame));
    return;
  }
  state.view?.onFrame?.(frame);
}

// Every mailbox is followed from the start, so the unread counts in the menu stay live.
function followMailboxes() {
  for (const space of state.me.spaces) {
    if (space.mailbox) state.live.subscribe(space.mailbox.channel, space.mailbox.seq).catch(() => {});
  }
}

function mailboxEvent(frame) {
  for (const space of state.me.spaces) {
    if (space.mailbox?.channel === frame.channel && frame.unread) {
      space.mailbox.unread = frame.unread;
      renderNav();
    }
  }
}

// -- a room ---------------------------------------------------------------------------------

function roomView(space, room) {
  const live = state.live;
  const list = h("ol", { class: "messages", role: "log", "aria-live": "polite", "aria-label": room.name, "data-testid": "messages" });
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
  const canPost = () => rights().includes("post") && !currentRoom(space.id, room.id)?.archived;
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
    const body = m.state === "hidden" ? h("em", {}, t("message.hidden"))
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
    const note = window.prompt(t("prompt.report"), "");
    if (note === null) return;
    try {
      await live.request({ type: "report", channel: room.channel, id: m.id, note });
      toast(t("done.report"));
    } catch (err) {
      fail(err);
    }
  }

  async function moderate(type, m) {
    const reason = window.prompt(t("prompt.reason"), "") ?? null;
    if (reason === null) return;
    try {
      await live.request({ type, channel: room.channel, id: m.id, reason });
    } catch (err) {
      fail(err);
    }
  }

  async function deleteOwn(m) {
    try {
      await live.request({ type: "delete", channel: room.channel, id: m.id });
    } catch (err) {
      fail(err);
    }
  }

  async function mute(m) {
    const reason = window.prompt(t("prompt.reason"), "") ?? null;
    if (reason === null) return;
    try {
      const ok = await live.request({ type: "mute", space: space.id, user_id: m.author.id, scope: room.area, minutes: 1440, reason });
      toast(t("done.mute", { until: new Date(ok.until).toLocaleString(getLang()) }));
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

function currentRoom(spaceId, roomId) {
  const space = state.me.spaces.find((s) => s.id === spaceId);
  return space?.rooms.find((r) => r.id === roomId);
}

// -- TwinMail -------------------------------------------------------------------------------

function mailView(space) {
  const live = state.live;
  const list = h("ul", { class: "threads", "data-testid": "threads" });
  const reader = h("div", { class: "reader", "aria-live": "polite" });
  let folder = "inbox";
  const view = { el: null };

  async function refresh() {
    try {
      const page = await live.request({ type: "mail_threads", space: space.id, folder });
      replace(list, page.threads.length ? page.threads.map((th) => h("li", {},
        h("button", { type: "button", class: `link${th.unread ? " unread" : ""}`, onclick: () => openThread(th) },
          h("strong", {}, th.last?.subject || "—"), " ", h("span", {}, th.last?.from?.name || ""))))
        : h("li", {}, t("mail.empty")));
    } catch (err) {
      fail(err);
    }
  }

  async function openThread(th) {
    try {
      const page = await live.request({ type: "mail_thread", space: space.id, thread: th.thread_id });
      replace(reader, page.mails.map((m) => h("article", { class: "mail" },
        h("h2", {}, m.subject || "—"),
        h("p", { class: "from" }, t("mail.from", { name: m.from?.name || "" }), " · ", formatTime(m.created_at)),
        h("p", { class: "text" }, m.text))),
      h("button", { type: "button", onclick: () => compose(page.mails[page.mails.length - 1]) }, t("mail.reply")));
      for (const m of page.mails) if (!m.read) live.request({ type: "mark_mail", id: m.id, read: true }).catch(() => {});
    } catch (err) {
      fail(err);
    }
  }

  async function compose(replyTo) {
    let people = [];
    try {
      people = (await live.request({ type: "mail_recipients", space: space.id })).members;
    } catch (err) {
      fail(err);
      return;
    }
    const boxes = people.map((p) => h("label", { class: "recipient" },
      h("input", { type: "checkbox", value: p.id, checked: replyTo && replyTo.from?.id === p.id }), ` ${p.name} (${p.school || ""})`));
    const subject = h("input", { id: "mail-subject", value: replyTo ? `Re: ${replyTo.subject}` : "" });
    const text = h("textarea", { id: "mail-text", rows: 5 });
    const form = h("form", { class: "compose" },
      h("fieldset", {}, h("legend", {}, t("mail.to")), boxes),
      h("label", { for: "mail-subject" }, t("mail.subject")), subject,
      h("label", { for: "mail-text" }, t("mail.text")), text,
      h("button", { type: "submit" }, t("mail.send")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const to = [...form.querySelectorAll("input[type=checkbox]:checked")].map((b) => Number(b.value));
      const frame = { type: "send_mail", space: space.id, to, text: text.value, subject: subject.value, client_id: clientId() };
      if (replyTo) frame.reply_to = replyTo.id;
      try {
        await live.request(frame);
        toast(t("mail.sent_ok"));
        replace(reader);
        refresh();
      } catch (err) {
        fail(err);
      }
    });
    replace(reader, form);
  }

  view.render = () => {
    const tabs = ["inbox", "sent", "archive", "trash"].map((f) => h("button", {
      type: "button", "aria-pressed": String(f === folder), onclick: () => { folder = f; view.render(); refresh(); },
    }, t(`mail.${f}`)));
    view.el = replace(view.el || h("section", { class: "mail-view", "data-testid": "mail" }),
      h("h1", {}, t("nav.mail"), " — ", space.name),
      h("div", { class: "tabs" }, tabs, h("button", { type: "button", onclick: () => compose(null) }, t("mail.compose"))),
      h("div", { class: "mail-body" }, list, reader));
  };
  view.render();
  view.start = () => {
    refresh();
  };
  view.onEvent = (e) => {
    if (e.channel === space.mailbox?.channel) refresh();
  };
  return view;
}

// -- the activity feed ----------------------------------------------------------------------

function feedView(space) {
  const live = state.live;
  const list = h("ol", { class: "feed", "aria-live": "polite", "data-testid": "feed" });
  const channel = `feed:${space.id}`;

  function line(a) {
    const vars = { actor: a.actor?.name || "TwinHub", room: a.room?.name || "", user: a.user?.name || "", kind: a.kind };
    const key = `kind.${a.kind}`;
    const text = t(key, vars) === key ? t("kind.other", vars) : t(key, vars);
    return h("li", {}, h("time", { datetime: a.created_at }, formatTime(a.created_at)), " ", text);
  }

  const view = {
    el: h("section", { class: "feed-view" }, h("h1", {}, t("nav.feed"), " — ", space.name), list),
    async start() {
      try {
        const page = await api("GET", `/api/spaces/${space.id}/activity?limit=50`);
        replace(list, page.activities.length ? page.activities.map(line) : h("li", {}, t("feed.empty")));
        await live.subscribe(channel, page.head);
      } catch (err) {
        fail(err);
      }
    },
    dispose: () => live.unsubscribe(channel),
    onEvent(e) {
      if (e.channel === channel) list.insertBefore(line(e), list.firstChild);
    },
  };
  return view;
}

// -- the moderation queue -------------------------------------------------------------------

function moderationView(space) {
  const live = state.live;
  const list = h("ul", { class: "reports", "aria-live": "polite", "data-testid": "reports" });
  const channel = space.moderation;

  function item(r) {
    const m = r.message;
    return h("li", { class: `report ${r.status}`, "data-report": r.id },
      h("p", {}, h("strong", {}, t(`moderation.status.${r.status}`)), " · ", t("moderation.reported_by", { name: r.reporter.name }),
        r.note ? ` — “${r.note}”` : ""),
      m ? h("blockquote", {}, h("span", { class: "author" }, m.author.name), " (", t(`area.${m.room.area}`), "): ", m.text ?? t("message.deleted"))
        : h("p", {}, t("moderation.mail_report")),
      r.status === "open" ? h("div", { class: "actions" },
        m && m.state === "visible" ? h("button", { type: "button", "data-action": "hide", onclick: () => act({ type: "hide", channel: `room:${m.room.id}`, id: m.id, reason: r.note || "reported" }) }, t("action.hide")) : null,
        h("button", { type: "button", "data-action": "resolve", onclick: () => act({ type: "resolve_report", id: r.id, outcome: "resolved", note: "" }) }, t("moderation.resolve")),
        h("button", { type: "button", "data-action": "dismiss", onclick: () => act({ type: "resolve_report", id: r.id, outcome: "dismissed", note: "" }) }, t("moderation.dismiss")),
      ) : null);
  }

  async function act(frame) {
    try {
      await live.request(frame);
      refresh();
    } catch (err) {
      fail(err);
    }
  }

  async function refresh() {
    try {
      const page = await live.request({ type: "reports", space: space.id, status: "open" });
      replace(list, page.reports.length ? page.reports.map(item) : h("li", {}, t("moderation.empty")));
    } catch (err) {
      fail(err);
    }
  }

  return {
    el: h("section", { class: "moderation-view" }, h("h1", {}, t("nav.moderation"), " — ", space.name), list),
    async start() {
      await live.subscribe(channel).catch(fail);
      refresh();
    },
    dispose: () => live.unsubscribe(channel),
    onEvent(e) {
      if (e.channel === channel) refresh();
    },
  };
}

boot();
