// What the TwinMail modules share: people shown with the badge of their role, a mail's text with
// its quoted lines set apart, dates in the reader's language, and the drafts kept on this device.

import { h } from "../dom.js";
import { dateWith, t } from "../i18n.js";
import { state, userKey } from "../state.js";

export const FOLDERS = ["inbox", "sent", "archive", "trash"];

// A role in the project (teacher_admin, pupil_member, …) or a badge already → the badge.
export function badgeOf(role) {
  if (!role) return null;
  if (role.startsWith("teacher")) return "teacher";
  if (role.startsWith("pupil")) return "pupil";
  return role;
}

// Whose role the page knows: a mail's `from` carries its badge, but `to` does not, so the page
// learns the others' roles from the address book (mail_recipients) and from every sender it shows.
// Someone it does not know (a recipient you may not write to) is shown without a badge.
export class People {
  constructor(space) {
    this.badges = new Map([[state.me.user.id, badgeOf(space.role)]]);
  }

  learn(person, role) {
    if (person?.id && role) this.badges.set(person.id, badgeOf(role));
  }

  badge(person) {
    return this.badges.get(person?.id) || null;
  }
}

export function badge(kind) {
  return kind ? h("span", { class: `badge badge-${kind}` }, t(`badge.${kind}`)) : null;
}

export function isMe(person) {
  return person?.id === state.me.user.id;
}

// A person as a mail names them: the name (or "you"), the badge, the school.
export function person(p, people, role) {
  const kind = role ?? people.badge(p);
  if (p.id === null) { // a pupil, to a visitor: never named (docs/protocol.md, the mail object)
    return h("span", { class: "person anonymous" },
      h("span", { class: "name" }, p.school ? t("author.pupil_of", { school: p.school }) : t("author.pupil")));
  }
  return h("span", { class: "person", "data-user": p.id },
    h("span", { class: "name" }, isMe(p) ? t("mail.me", { name: p.name }) : p.name),
    kind ? [" ", badge(kind)] : null,
    p.school ? [" ", h("span", { class: "school" }, p.school)] : null);
}

// A mail's text: the lines that start with ">" (what it quotes) are set apart as a quotation, one
// level of ">" taken off; the rest as it was typed. Only ever text, never HTML.
export function mailText(text) {
  const out = [];
  let run = null;
  for (const line of (text ?? "").split("\n")) {
    const quoted = line.startsWith(">");
    if (!run || run.quoted !== quoted) {
      run = { quoted, lines: [] };
      out.push(run);
    }
    run.lines.push(quoted ? line.replace(/^> ?/, "") : line);
  }
  return h("div", { class: "text" }, out.map((r) => (r.quoted
    ? h("blockquote", { class: "quote" }, r.lines.join("\n"))
    : h("span", {}, r.lines.join("\n")))));
}

// The quotation a reply starts with: who wrote, when, and their text, each line behind "> ".
export function quotation(mail) {
  const lines = (mail.text ?? "").split("\n").map((line) => (line.startsWith(">") ? `>${line}` : `> ${line}`));
  return `${t("mail.quote_intro", { name: mail.from?.name || "", date: formatLong(mail.created_at) })}\n${lines.join("\n")}\n\n`;
}

// Dates in the reader's language: the full date and time in a mail, a short one in a list
// (the time for today's mail).
export function formatLong(iso) {
  return dateWith({ dateStyle: "full", timeStyle: "short" }, iso);
}

export function formatShort(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  return dateWith(today ? { hour: "2-digit", minute: "2-digit" } : { day: "numeric", month: "short" }, iso);
}

// Characters as the server counts them (code points: an emoji is one).
export function chars(s) {
  return [...(s ?? "")].length;
}

export function limit(name, fallback) {
  return state.me?.limits?.[name] || fallback;
}

// Drafts: the user's own words on their own device, in localStorage, per user and per project,
// keyed by draft ("new", or "reply:<mail id>"). Which draft was open is kept too, so that coming
// back to TwinMail opens it again. Sending a draft removes it.
function draftsKey(spaceId) {
  return userKey("mail-drafts", spaceId);
}

function openKey(spaceId) {
  return userKey("mail-open", spaceId);
}

function readAll(spaceId) {
  try {
    return JSON.parse(localStorage.getItem(draftsKey(spaceId)) || "{}") || {};
  } catch {
    return {};
  }
}

export const drafts = {
  get(spaceId, key) {
    return readAll(spaceId)[key] || null;
  },
  put(spaceId, key, draft) {
    const all = readAll(spaceId);
    all[key] = { ...draft, saved_at: new Date().toISOString() };
    localStorage.setItem(draftsKey(spaceId), JSON.stringify(all));
  },
  remove(spaceId, key) {
    const all = readAll(spaceId);
    delete all[key];
    if (Object.keys(all).length) localStorage.setItem(draftsKey(spaceId), JSON.stringify(all));
    else localStorage.removeItem(draftsKey(spaceId));
    if (this.open(spaceId) === key) this.setOpen(spaceId, null);
  },
  open(spaceId) {
    return localStorage.getItem(openKey(spaceId));
  },
  setOpen(spaceId, key) {
    if (key) localStorage.setItem(openKey(spaceId), key);
    else localStorage.removeItem(openKey(spaceId));
  },
};
