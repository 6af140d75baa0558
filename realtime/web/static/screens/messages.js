// How a room's messages look: one <li> each — author, badge, time, text with its links, "edited",
// "reported", the actions the viewer has on it — the separators between days, and the inline
// editor of one's own message. Only h() builds them: a message's text is text, whatever it holds.

import { h } from "../dom.js";
import { formatDate, formatDateTime, formatTime, t } from "../i18n.js";
import { safeUrl } from "../links.js";
import { mutable } from "./mute_dialog.js";

// Links in a message: only http and https addresses, written out in full; anything else
// (javascript:, data:, a bare "www.") stays text. The trailing punctuation of a sentence is not
// part of the address, nor a closing parenthesis the address did not open.
const URL_IN_TEXT = /\bhttps?:\/\/[^\s<>"'`]+/gi;
const TRAILING = /[.,;:!?'")\]}»]+$/;

function trimmed(found) {
  let url = found.replace(TRAILING, "");
  const rest = found.slice(url.length);
  // "(see https://example.org/a_(b))": keep the parentheses the address itself opened.
  let i = 0;
  while (i < rest.length && rest[i] === ")" && (url.split("(").length - 1) > (url.split(")").length - 1)) {
    url += ")";
    i += 1;
  }
  return url;
}

export function linkified(text) {
  const parts = [];
  let last = 0;
  for (const match of text.matchAll(URL_IN_TEXT)) {
    const url = trimmed(match[0]);
    const href = safeUrl(url);
    if (!href) continue;
    if (match.index > last) parts.push(text.slice(last, match.index));
    parts.push(h("a", { href, rel: "noopener noreferrer nofollow", target: "_blank" }, url));
    last = match.index + url.length;
  }
  if (last < text.length) parts.push(text.slice(last));
  return parts;
}

// The local calendar day of a time, as a key: messages of one day share it.
export function dayOf(iso) {
  const d = iso ? new Date(iso) : new Date();
  return `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, "0")}-${String(d.getDate()).padStart(2, "0")}`;
}

export function daySeparator(day, iso) {
  return h("li", { class: "day", "data-day": day, "data-testid": "day" },
    h("time", { datetime: day }, formatDate(iso || `${day}T12:00:00`)));
}

// Puts a separator before the first message of each day, and none elsewhere — after any change
// to the list (messages are only ever added or removed at its ends, or replaced in place).
export function fixDays(list) {
  for (const el of [...list.querySelectorAll(":scope > li.day")]) el.remove();
  let previous = null;
  for (const el of [...list.children]) {
    const day = el.dataset.day;
    if (day && day !== previous) list.insertBefore(daySeparator(day, el.dataset.at), el);
    previous = day || previous;
  }
}

// A pupil shown to a visitor has no name (docs/protocol.md, "What a visitor sees of pupils").
export function authorName(author, me) {
  if (!author) return me.name;
  if (author.name) return author.name;
  return author.school ? t("author.pupil_of", { school: author.school }) : t("author.pupil");
}

function badge(role) {
  return role ? h("span", { class: `badge badge-${role}` }, t(`badge.${role}`)) : null;
}

function actionButton(action, label, onclick) {
  return h("button", { type: "button", "data-action": action, onclick }, label);
}

// `how`: {me, pending, mine, moderates, canEdit, reported, editing, act: {report, hide, unhide,
// remove, mute, deleteOwn, edit, saveEdit, cancelEdit}}.
//
// A message is its author, badge and time on one line and its words below; what the viewer may do
// with it (Report; Edit, Delete; Hide, Show again, Delete, Mute…) is one small toolbar that shows
// over the message's corner while the pointer is on it or the keyboard's focus in it — its
// buttons are in the tab order, and show as soon as one has the focus. On a touch screen (no
// pointer to hover with) the toolbar opens with the message's one "⋯" button (style.css).
export function renderMessage(m, how) {
  const { pending = false, mine, moderates, reported, act } = how;
  const editing = how.editing && !pending && mine && m.state === "visible";
  let body;
  if (m.state === "hidden" && m.text != null) { // its words reach those who moderate the room only
    body = h("span", { class: "text hidden-text" }, h("span", { class: "hidden-label" }, t("moderation.hidden_label")), " ", m.text);
  } else if (m.state === "hidden") body = h("em", {}, t("message.hidden"));
  else if (m.state === "deleted") body = h("em", {}, t("message.deleted"));
  else if (editing) body = editor(m, act);
  else body = h("span", { class: "text" }, linkified(m.text || ""));
  const actions = h("span", { class: "actions", id: m.id ? `actions-${m.id}` : null, "data-testid": "actions" });
  if (!pending && !editing) {
    if (m.state === "visible" && !mine && !reported) actions.appendChild(actionButton("report", t("action.report"), () => act.report(m)));
    if (moderates && !mine) {
      if (m.state === "visible") actions.appendChild(actionButton("hide", t("action.hide"), () => act.hide(m)));
      if (m.state === "hidden") actions.appendChild(actionButton("unhide", t("action.unhide"), () => act.unhide(m)));
      if (m.state !== "deleted") actions.appendChild(actionButton("delete", t("action.delete"), () => act.remove(m)));
      // A deleted message has nothing left to answer for; a teacher is never muted.
      if (m.state !== "deleted" && m.author?.id != null && mutable(m.author.role)) {
        actions.appendChild(actionButton("mute", t("chat.mute"), () => act.mute(m)));
      }
    }
    if (mine && m.state === "visible") {
      if (how.canEdit) actions.appendChild(actionButton("edit", t("chat.edit"), () => act.edit(m)));
      actions.appendChild(actionButton("delete", t("action.delete"), () => act.deleteOwn(m)));
    }
  }
  const name = authorName(m.author, how.me);
  const more = actions.children.length ? h("button", {
    type: "button", class: "more", "aria-expanded": "false", "aria-controls": actions.id,
    "aria-label": t("chat.actions_for", { name }), "data-testid": "more",
    onclick: (ev) => {
      const open = ev.currentTarget.getAttribute("aria-expanded") !== "true";
      ev.currentTarget.setAttribute("aria-expanded", String(open));
      if (open) actions.querySelector("button")?.focus();
    },
  }, "⋯") : null;
  return h("li", {
    class: `message ${m.state}${pending ? " pending" : ""}${mine ? " mine" : ""}`,
    "data-id": m.id ?? "", "data-seq": m.seq ?? "", "data-state": m.state,
    "data-day": dayOf(m.created_at), "data-at": m.created_at || "", tabindex: "-1",
  },
  h("span", { class: "meta" },
    h("span", { class: "author" }, name),
    badge(m.author?.role),
    m.author?.school && m.author?.name ? h("span", { class: "school" }, m.author.school) : null,
    h("time", { datetime: m.created_at || "", title: m.created_at ? formatDateTime(m.created_at) : null },
      pending ? t("message.sending") : formatTime(m.created_at)),
    m.edited_at && m.state === "visible" ? h("span", { class: "edited", "data-testid": "edited" }, t("message.edited")) : null,
    reported && m.state === "visible" ? h("span", { class: "reported", "data-testid": "reported" }, t("chat.reported")) : null),
  m.title && m.state === "visible" ? h("strong", { class: "title" }, m.title) : null,
  body,
  more,
  actions.children.length ? actions : null);
}

// One's own message, edited where it stands: Enter saves, Shift+Enter starts a new line,
// Escape (or Cancel) gives the message back as it was.
function editor(m, act) {
  const id = `edit-${m.id}`;
  const text = h("textarea", { id, class: "edit-text", rows: 2, "aria-label": t("chat.edit_label"), "aria-describedby": `${id}-hint` }, m.text || "");
  const form = h("form", { class: "edit", "data-testid": "editor" },
    text,
    h("p", { class: "hint", id: `${id}-hint` }, t("chat.edit_hint")),
    h("span", { class: "edit-actions" },
      h("button", { type: "submit", "data-action": "save" }, t("chat.save")),
      h("button", { type: "button", class: "secondary", "data-action": "cancel", onclick: () => act.cancelEdit(m) }, t("dialog.cancel"))));
  text.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      form.requestSubmit();
    } else if (ev.key === "Escape") {
      ev.preventDefault();
      act.cancelEdit(m);
    }
  });
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    act.saveEdit(m, text.value.trim());
  });
  return form;
}
