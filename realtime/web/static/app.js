// The TwinHub page: log in, then the shell — the projects with their screens in the menu, the
// connection's state, notices — and the screens themselves, one ES module each under screens/.
// A screen is reached by its address (#/room/12, #/mail/3, …), so links, the back button and a
// reload all land where they should. Plain ES modules, no build step, no request outside this
// server.

import { api, h, replace } from "./dom.js";
import { errorText, forgetLang, formatDateTime, getLang, languageNames, loadLanguages, sameName, setLang, t } from "./i18n.js";
import { Live } from "./live.js";
import { homeView, noteInvitation } from "./screens/home.js";
import { joinPage, loginRefusal } from "./screens/join.js";
import { followQueues, openCount, queueEvent } from "./queues.js";
import { followUnread, showUnreadTitle, unreadCount, unreadEvent, unreadLabel } from "./screens/unread.js";
import { currentSpace, forgetUser, hasMembersScreen, roomAreas, state } from "./state.js";
import { setToasts, toast } from "./ui.js";

const app = document.getElementById("app");

// The other screens are fetched when first opened (a pupil's browser never loads the teachers'
// screens): each name below is a factory answering a promise of the view, which the router
// awaits. Start (home.js) and joining (join.js) come with the page.
function lazy(load, name) {
  const factory = (...args) => load().then((m) => m[name](...args), () => Promise.reject({ code: "network" }));
  factory.load = load;
  return factory;
}
const accountView = lazy(() => import("./screens/account.js"), "accountView");
const feedView = lazy(() => import("./screens/feed.js"), "feedView");
const journalView = lazy(() => import("./screens/journal.js"), "journalView");
const mailView = lazy(() => import("./screens/mail.js"), "mailView");
const membersView = lazy(() => import("./screens/members.js"), "membersView");
const moderationView = lazy(() => import("./screens/moderation.js"), "moderationView");
const platformView = lazy(() => import("./screens/platform.js"), "platformView");
const projectView = lazy(() => import("./screens/project.js"), "projectView");
const newRoomView = lazy(() => import("./screens/project.js"), "newRoomView");
const roomView = lazy(() => import("./screens/room.js"), "roomView");

// Each screen by the first part of its address; the rest of the address is its arguments
// (numbers). A screen's factory answers null when the viewer may not see it (then: home).
const SCREENS = {
  // #/room/12, or #/room/12/message/345: the room (or the journal) around that message.
  // A platform moderator reads every room, most of them in no welcome of theirs (a report's):
  // the room screen reads that one by its id.
  room: ([roomId, what, messageId]) => {
    const at = what === "message" && Number.isInteger(messageId) ? messageId : null;
    for (const space of state.me.spaces) {
      const room = space.rooms.find((r) => r.id === roomId);
      if (room?.kind === "journal") return journalView(space, room, [what, messageId].filter((x) => x !== undefined));
      if (room) return roomView(space, room, { messageId: at });
    }
    return state.me.user.platform_role === "moderator" && Number.isInteger(roomId) ? roomView(null, { id: roomId }, { messageId: at }) : null;
  },
  // #/mail/3, or #/mail/3/thread/12: that thread open.
  mail: ([spaceId, what, threadId]) => (currentSpace(spaceId)?.mailbox
    ? mailView(currentSpace(spaceId), { threadId: what === "thread" && Number.isInteger(threadId) ? threadId : null }) : null),
  feed: ([spaceId]) => (currentSpace(spaceId) ? feedView(currentSpace(spaceId)) : null),
  moderation: ([spaceId]) => (currentSpace(spaceId)?.moderation ? moderationView(currentSpace(spaceId)) : null),
  platform: () => (state.me.user.platform_role ? platformView() : null),
  project: ([spaceId, section]) => (currentSpace(spaceId)?.role === "teacher_admin" ? projectView(currentSpace(spaceId), section) : null),
  "new-room": ([spaceId]) => (roomAreas(currentSpace(spaceId)).length ? newRoomView(currentSpace(spaceId)) : null), // a pupil admin too
  home: () => homeView(),
  account: () => accountView({ showLogin }),
  members: ([spaceId]) => (hasMembersScreen(currentSpace(spaceId)?.role) ? membersView(currentSpace(spaceId)) : null),
};

export function href(screen, ...args) {
  return `#/${[screen, ...args].join("/")}`;
}

export function go(screen, ...args) {
  location.hash = href(screen, ...args);
}

// -- start ----------------------------------------------------------------------------------

async function boot() {
  const me = location.pathname === "/join" ? null : api("GET", "/api/me"); // asked while the words load
  me?.catch(() => {});
  await loadLanguages();
  if (location.pathname === "/join") return joinPage({ root: app, start, languageMenu });
  try {
    await start(await me);
  } catch {
    showLogin();
  }
}

function showLogin(notice, refusal = null) {
  if (state.live) state.live.stop();
  state.live = null;
  state.me = null;
  document.body.classList.remove("menu-open"); // logging out from the phone's open menu
  const error = h("p", { class: "error", role: "alert", id: "login-error" }, refusal ? loginRefusal(refusal) : notice || "");
  const username = h("input", { id: "username", name: "username", autocomplete: "username", required: true });
  const password = h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true });
  const form = h("form", { class: "login", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, t("login.title")),
    h("label", { for: "username" }, t("login.username")), username,
    h("label", { for: "password" }, t("login.password")), password,
    h("button", { type: "submit" }, t("login.submit")),
    error,
    languageMenu(() => showLogin(notice, refusal)),
  );
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const session = await api("POST", "/api/login", { username: username.value.trim(), password: password.value });
      start(await api("GET", "/api/me"));
      // The first login after a teacher set a new password says who did (docs/roles.md).
      const reset = session.password_reset;
      if (reset) toast(t("login.password_was_reset", { name: reset.by?.name || "", date: formatDateTime(reset.at) }), { ms: 15000 });
    } catch (err) {
      refusal = err;
      error.textContent = loginRefusal(err);
    }
  });
  replace(app, h("main", { class: "login-page" }, form));
  username.focus();
}

// Every language the page has, each by its own name.
function languageMenu(rerender) {
  const names = languageNames();
  const select = h("select", {
    id: "lang", "data-testid": "lang", "aria-label": t("lang.label"),
    onchange: async () => {
      await setLang(select.value);
      // Kept by the server too: the same words at the next login, on any computer.
      if (state.me) api("PUT", "/api/account/language", { language: getLang() }).catch(() => {});
      rerender();
    },
  }, Object.entries(names).map(([tag, name]) => h("option", { value: tag, lang: tag, selected: tag === getLang() }, name)));
  return h("span", { class: "lang" }, select);
}

async function start(me) {
  if (me.user.language && me.user.language !== getLang()) await setLang(me.user.language, { remember: false });
  // A language chosen on the login or join page, before the account had one, becomes the account's.
  else if (!me.user.language && localStorage.getItem("twinhub.lang") === getLang()) {
    api("PUT", "/api/account/language", { language: getLang() }).catch(() => {});
  }
  state.me = me;
  state.live = new Live({
    userId: me.user.id,
    onStatus: (s) => { state.status = s; renderStatus(); },
    onWelcome: (w) => { state.me = w; followMailboxes(); followQueues(renderNav); followUnread(renderNav); renderNav(); state.view?.rightsChanged?.(); },
    onEvent: (e) => routeEvent(e),
    onFrame: (f) => routeFrame(f),
    onSessionEnded: () => showLogin(t("login.expired")),
  });
  renderShell();
  state.live.start();
  route({ focus: false });
  // Then, while the browser is idle, the screens nearly every visit opens next: a room, the journal.
  (window.requestIdleCallback || setTimeout)(() => [roomView, journalView].forEach((v) => v.load().catch(() => {})));
}

// -- the shell ------------------------------------------------------------------------------

const shell = {};

function renderShell() {
  shell.status = h("span", { class: "status", role: "status", "aria-live": "polite", "data-testid": "status" });
  shell.nav = h("nav", { id: "menu", "aria-label": t("nav.projects") });
  shell.main = h("main", { id: "main", tabindex: "-1" });
  shell.toasts = h("div", { class: "toasts", role: "alert", "aria-live": "assertive", "data-testid": "toasts" });
  setToasts(shell.toasts);
  const header = h("header", {},
    h("a", { class: "skip", href: "#main", onclick: skipToWork, onfocus: nameSkip }, t("nav.skip_main")),
    h("span", { class: "brand" }, t("app.title")),
    h("button", {
      type: "button", class: "menu-toggle", "aria-controls": "menu", "aria-expanded": "false", "data-testid": "menu-toggle",
      onclick: (ev) => showMenu(ev.currentTarget.getAttribute("aria-expanded") !== "true"),
    }, t("nav.menu")),
    h("span", { class: "who" }, state.me.user.school ? `${state.me.user.name} — ${state.me.user.school}` : state.me.user.name),
    shell.status,
    languageMenu(() => { renderShell(); renderNav(); state.view?.render?.(); }),
    h("button", { type: "button", class: "logout", onclick: logout }, t("logout")),
  );
  replace(app, header, h("div", { class: "layout" }, shell.nav, shell.main), shell.toasts);
  renderStatus();
  renderNav();
  if (state.view?.el) replace(shell.main, state.view.el);
}

// On a phone the menu (and who is logged in, the language, logging out) folds away behind one
// button, so that each screen has the whole height and one scroll area; choosing a screen folds
// it again. On a wide screen the button is not shown and the menu is always there.
function showMenu(open) {
  document.body.classList.toggle("menu-open", open);
  app.querySelector(".menu-toggle")?.setAttribute("aria-expanded", String(open));
  if (open) shell.nav.querySelector("a")?.focus();
}

// The skip link goes to the message box when the screen has one, to the screen otherwise — and
// says which when it gets the focus.
function nameSkip(ev) {
  ev.currentTarget.textContent = shell.main.querySelector("#composer") ? t("nav.skip") : t("nav.skip_main");
}

function skipToWork(ev) {
  ev.preventDefault();
  const target = shell.main.querySelector("#composer") || shell.main;
  target.focus();
}

function renderStatus() {
  if (!shell.status) return;
  shell.status.textContent = t(`status.${state.status}`);
  shell.status.dataset.state = state.status;
}

async function logout() {
  const userId = state.me.user.id;
  await api("POST", "/api/logout").catch(() => {});
  forgetUser(userId); // nothing of theirs stays on a shared PC,
  history.replaceState(null, "", location.pathname); // nor where they were: the next one starts at Start
  await forgetLang(); // nor their language
  showLogin();
}

function navLink(screen, args, label, attrs = {}) {
  const target = href(screen, ...args);
  const here = location.hash === target || location.hash.startsWith(`${target}/`); // #/room/6/message/9, #/project/3/bots too
  return h("a", { class: "link", href: target, "aria-current": here ? "page" : null, ...attrs }, label);
}

function renderNav() {
  if (!shell.nav) return;
  const items = [h("ul", { class: "nav-top" },
    h("li", {}, navLink("home", [], t("nav.home"), { "data-testid": "nav-home" })),
    h("li", {}, navLink("account", [], t("nav.account"), { "data-testid": "nav-account" })))];
  if (state.me.user.platform_role) items.push(platformNav());
  for (const space of state.me.spaces) {
    const rooms = space.rooms.map((room) => h("li", {},
      navLink("room", [room.id], [
        room.kind === "journal" ? null : h("span", { "aria-hidden": "true" }, "# "), room.name,
        // The area, unless the room is named after it ("# Chat Chat" says nothing twice).
        sameName(room.name, t(`area.${room.area}`)) ? null : h("span", { class: "area" }, t(`area.${room.area}`)),
        room.archived ? h("span", { class: "badge" }, t("nav.archived")) : null,
        unreadCount(room.id) ? h("span", { class: "count", "data-testid": "room-unread" }, t("chat.unread", { n: unreadLabel(unreadCount(room.id)) })) : null,
      ], { "data-channel": room.channel })));
    const unread = space.mailbox?.unread?.inbox || 0;
    items.push(h("section", { class: "space" },
      h("h2", {}, space.name, space.closed ? h("span", { class: "badge" }, t("nav.closed")) : null),
      h("h3", {}, t("nav.rooms")),
      h("ul", {}, rooms,
        roomAreas(space).length && !space.closed ? h("li", { class: "new-room" }, navLink("new-room", [space.id], t("project.new_room.nav"), { "data-testid": "nav-new-room" })) : null),
      h("ul", {},
        space.mailbox ? h("li", {}, navLink("mail", [space.id], [
          t("nav.mail"), unread ? h("span", { class: "count", "data-testid": "unread" }, t("mail.unread", { n: unread })) : null,
        ], { "data-testid": "nav-mail" })) : null,
        h("li", {}, navLink("feed", [space.id], t("nav.feed"), { "data-testid": "nav-feed" })),
        space.moderation ? h("li", {}, navLink("moderation", [space.id], [t("nav.moderation"), queueCount(space.moderation)], { "data-testid": "nav-moderation" })) : null,
        space.role === "teacher_admin" ? h("li", {}, navLink("project", [space.id], t("project.nav"), { "data-testid": "nav-project" })) : null,
        hasMembersScreen(space.role) ? h("li", {}, navLink("members", [space.id], t("members.nav"), { "data-testid": "nav-members" })) : null,
      )));
  }
  replace(shell.nav, items);
  showUnreadTitle();
}

// The count of open reports on a queue, live (queues.js), next to its menu entry.
function queueCount(channel) {
  const n = openCount(channel);
  return n ? h("span", { class: "count", "data-testid": "queue-count" }, t("moderation.open_count", { n })) : null;
}

// Platform staff: their own screen (#/platform), with the platform queue's count for moderators.
function platformNav() {
  const { platform_role: role, moderation } = state.me.user;
  return h("section", { class: "space" }, h("h2", {}, t("platform.nav_title")), h("ul", {}, h("li", {},
    navLink("platform", [], [t(`platform.nav.${role}`), moderation ? queueCount(moderation) : null], { "data-testid": "nav-platform" }))));
}

// Opens the screen the address names; an unknown or forbidden address opens Start (home) —
// platform staff with no project: their platform screen. A screen whose module is still loading
// when another address is asked for is not opened; one that cannot load leaves the open one.
let routing = 0;

async function route({ focus = true } = {}) {
  if (!state.me) return;
  const ticket = ++routing;
  const [name, ...rest] = location.hash.replace(/^#\/?/, "").split("/");
  const args = rest.map((x) => (/^\d+$/.test(x) ? Number(x) : x));
  try {
    let view = await SCREENS[name]?.(args);
    if (!view && ticket === routing && state.me) {
      const staffOnly = state.me.user.platform_role && !state.me.spaces.length;
      history.replaceState(null, "", href(staffOnly ? "platform" : "home"));
      view = await (staffOnly ? platformView() : homeView());
    }
    if (ticket !== routing || !state.me) return;
    open(view, { focus });
  } catch (err) {
    if (err?.code !== "network") throw err;
    toast(errorText(err));
  }
  renderNav();
}

// Escape folds the phone's menu again, back to the button that opened it.
document.addEventListener("keydown", (ev) => {
  if (ev.key !== "Escape" || !document.body.classList.contains("menu-open")) return;
  showMenu(false);
  app.querySelector(".menu-toggle")?.focus();
});

window.addEventListener("hashchange", () => {
  showMenu(false);
  route();
});

function open(view, { focus = true } = {}) {
  state.view?.dispose?.();
  state.view = view;
  replace(shell.main, view.el);
  showUnreadTitle();
  Promise.resolve(view.start?.()).finally(showUnreadTitle); // a title the screen loads with it
  if (focus) {
    shell.main.focus({ preventScroll: true }); // keyboard and screen-reader users land on what they opened
    window.scrollTo(0, 0); // with the header (status, language, log out) in view
  }
}

function routeEvent(frame) {
  if (frame.channel.startsWith("mail:")) mailboxEvent(frame);
  if (frame.channel.startsWith("moderation:")) queueEvent(frame);
  unreadEvent(frame);
  state.view?.onEvent?.(frame);
}

function routeFrame(frame) {
  if (frame.type === "error" && frame.channel) {
    // A subscription ended (rights changed, the room deleted): the screen explains it when it
    // can (channelEnded answers true), the error's words otherwise.
    if (!state.view?.channelEnded?.(frame.channel)) toast(errorText(frame));
    return;
  }
  if (frame.type === "error") {
    toast(errorText(frame));
    return;
  }
  if (frame.type === "invitation") noteInvitation(frame);
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

boot();
