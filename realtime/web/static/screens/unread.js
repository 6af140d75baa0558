// What is new where the reader is not looking: each room's unread messages in the menu and their
// total (with unread TwinMail) in the page's title — "(4) TwinHub" — and, only for those who ask,
// a desktop notification and a short beep when someone names them or mail arrives.
//
// The server keeps each member's read position per room (docs/protocol.md, "Unread messages"):
// GET /api/rooms/unread after each welcome gives the counts, and the project's activity feed —
// one subscription per project, not one per room (a room subscription would show the reader in
// every room's presence) — tells of each new post: counted once, by its message id. The room
// open on screen counts nothing while the page is seen: its view marks it read.

import { api } from "../dom.js";
import { t } from "../i18n.js";
import { totalOpen } from "../queues.js";
import { state } from "../state.js";

const counts = new Map(); // room id -> unread messages
const latest = new Map(); // room id -> id of the newest message counted (or known read)
const POSTS = new Set(["message.posted", "journal.entry", "journal.comment"]);
let openRoom = null;
let rerender = () => {};

export function pageSeen() {
  return document.visibilityState === "visible";
}

// After each welcome (the first, and after every reconnect or change of rights): follow the
// feeds again and read the counts afresh.
export async function followUnread(render) {
  rerender = render;
  const live = state.live;
  // Subscriptions are counted (max_channels): the mailboxes are followed too, and a few stay free
  // for the screens. A member of more projects than that gets the counts of the others at each
  // welcome only.
  const mailboxes = state.me.spaces.filter((s) => s.mailbox).length;
  let budget = (state.me.limits?.max_channels || 100) - mailboxes - 10;
  for (const space of state.me.spaces) {
    if (!space.feed || budget-- <= 0) continue;
    live.keep(space.feed); // a feed screen closing does not end this subscription
    live.request({ type: "subscribe", channel: space.feed }).catch(() => {});
  }
  try {
    const { rooms } = await api("GET", "/api/rooms/unread");
    counts.clear();
    for (const room of rooms) {
      counts.set(room.id, room.id === openRoom && pageSeen() ? 0 : room.unread);
      if (room.latest !== null) latest.set(room.id, Math.max(latest.get(room.id) || 0, room.latest));
    }
  } catch {
    // the menu simply shows no counts until the next welcome
  }
  rerender();
}

export function unreadCount(roomId) {
  return counts.get(roomId) || 0;
}

export function unreadLabel(n) {
  return n >= 100 ? "99+" : String(n);
}

// "(4) TwinHub": the rooms' unread messages and the unread mail of every project.
export function showUnreadTitle() {
  let total = 0;
  for (const n of counts.values()) total += n;
  for (const space of state.me?.spaces || []) total += space.mailbox?.unread?.inbox || 0;
  total += totalOpen(); // reports awaiting this moderator
  // The screen's own title first (a tab, a screen reader, the history say where one is), then
  // TwinHub; what awaits the reader in front.
  const screen = document.querySelector("main h1")?.textContent?.trim();
  const base = screen ? `${screen} — ${t("app.title")}` : t("app.title");
  document.title = total ? `(${total}) ${base}` : base;
}

// Events of every channel pass here (app.js routeEvent): posts in the feeds, mail received.
export function unreadEvent(frame) {
  if (frame.channel.startsWith("feed:") && POSTS.has(frame.kind) && frame.room && frame.message_id) {
    const roomId = frame.room.id;
    if (frame.actor?.id && frame.actor.id === state.me.user.id) return;
    if (frame.message_id <= (latest.get(roomId) || 0)) return; // counted already (or read)
    latest.set(roomId, frame.message_id);
    if (roomId === openRoom && pageSeen()) return;
    counts.set(roomId, (counts.get(roomId) || 0) + 1);
    rerender();
  } else if (frame.channel.startsWith("mail:") && frame.kind === "mail.received") {
    alertUser(t("chat.notify_mail", { name: frame.mail?.from?.name || t("author.pupil") }), `mail:${frame.mail?.id}`);
  }
}

// The room view says which room is on screen, and that what it shows is read.
export function roomOpened(roomId) {
  openRoom = roomId;
  roomRead(roomId);
}

export function roomClosed(roomId) {
  if (openRoom === roomId) openRoom = null;
}

export function roomRead(roomId, messageId) {
  if (messageId) latest.set(roomId, Math.max(latest.get(roomId) || 0, messageId));
  if (counts.get(roomId)) {
    counts.set(roomId, 0);
    rerender();
  }
}

// A message in the open room arrived while the page was not seen: the title says so.
export function roomMissed(roomId, messageId) {
  if (messageId <= (latest.get(roomId) || 0)) return;
  latest.set(roomId, messageId);
  counts.set(roomId, (counts.get(roomId) || 0) + 1);
  rerender();
}

// -- alerts: off unless asked for, kept on this browser -------------------------------------

const NOTIFY_KEY = "twinhub.notify";
const SOUND_KEY = "twinhub.sound";
let audio = null;

export function notifySupported() {
  return "Notification" in window;
}

export function notifyOn() {
  return localStorage.getItem(NOTIFY_KEY) === "1" && notifySupported() && Notification.permission === "granted";
}

export function soundOn() {
  return localStorage.getItem(SOUND_KEY) === "1";
}

// Only on a click: the browser asks the reader, once, whether this page may notify them.
export async function toggleNotify() {
  if (notifyOn()) {
    localStorage.removeItem(NOTIFY_KEY);
    return false;
  }
  if (!notifySupported()) return false;
  const answer = Notification.permission === "granted" ? "granted" : await Notification.requestPermission();
  if (answer !== "granted") return null; // refused: the browser will not ask again
  localStorage.setItem(NOTIFY_KEY, "1");
  return true;
}

export function toggleSound() {
  if (soundOn()) {
    localStorage.removeItem(SOUND_KEY);
    return false;
  }
  localStorage.setItem(SOUND_KEY, "1");
  beep(); // made on a click, so the browser lets it play: the reader hears what it will be
  return true;
}

// A short two-note chime made on the spot (no sound file).
export function beep() {
  try {
    audio = audio || new AudioContext();
    const now = audio.currentTime;
    const gain = audio.createGain();
    gain.connect(audio.destination);
    gain.gain.setValueAtTime(0.0001, now);
    gain.gain.exponentialRampToValueAtTime(0.2, now + 0.02);
    gain.gain.exponentialRampToValueAtTime(0.0001, now + 0.3);
    for (const [freq, at] of [[880, 0], [1320, 0.12]]) {
      const tone = audio.createOscillator();
      tone.frequency.value = freq;
      tone.connect(gain);
      tone.start(now + at);
      tone.stop(now + at + 0.18);
    }
  } catch {
    // no audio on this browser
  }
}

// A mention of the reader — their name, or @ and its first word — in someone else's message.
export function mentions(text) {
  const name = state.me?.user?.name;
  if (!text || !name) return false;
  const lower = text.toLocaleLowerCase();
  const first = name.split(/\s+/)[0].toLocaleLowerCase();
  return lower.includes(name.toLocaleLowerCase()) || (first.length > 1 && lower.includes(`@${first}`));
}

export function alertUser(text, tag) {
  if (soundOn()) beep();
  if (notifyOn() && (!pageSeen() || !document.hasFocus())) {
    try {
      new Notification(t("app.title"), { body: text, tag });
    } catch {
      // some browsers allow notifications only from a service worker
    }
  }
}
