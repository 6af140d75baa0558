// TwinMail: one thread, as the reader holds it — each mail with its date, From and To (names with
// the badge of their role), its text with what it quotes set apart; reply, reply to all, report;
// and what can be done with the thread's mails in the open folder (archive, trash, restore,
// delete for good, mark unread). Opening a thread marks its mails read.

import { h, replace } from "../dom.js";
import { t } from "../i18n.js";
import { state } from "../state.js";
import { confirmed, dialog, fail, field, toast } from "../ui.js";
import { formatLong, isMe, limit, mailText, person } from "./mail_common.js";

// Where a mail goes back to from the archive or the trash: the folder it came from.
export function origin(mail) {
  return isMe(mail.from) ? "sent" : "inbox";
}

// Who a reply goes to: the sender (your own mail: its recipients); to all: the sender and every
// recipient but you.
export function replyTargets(mail, all) {
  if (isMe(mail.from)) return mail.to.filter((p) => !isMe(p));
  if (!all) return [mail.from];
  const seen = new Set();
  return [mail.from, ...mail.to].filter((p) => !isMe(p) && !seen.has(p.id) && seen.add(p.id));
}

export function threadPane({ space, people, folder, threadId, onBack, onReply, onDone, replyLabel }) {
  const live = state.live;
  const mails = new Map(); // id -> mail (every folder: a thread is all your mails of it)
  const el = h("article", { class: "thread", "data-testid": "thread", "data-thread": threadId, "aria-labelledby": "thread-title" });
  let busy = false;

  const folderName = (f) => t(`mail.${f}`);

  function back() {
    return h("button", { type: "button", class: "back", "data-action": "back", "data-key": "back", onclick: onBack },
      h("span", { "aria-hidden": "true" }, "← "), t("mail.back", { folder: folderName(folder) }));
  }

  async function load() {
    replace(el, back(), h("p", { class: "loading" }, t("mail.loading")));
    try {
      mails.clear();
      let after;
      for (;;) {
        const frame = { type: "mail_thread", space: space().id, thread: threadId, limit: limit("max_page", 100) };
        if (after) frame.after = after;
        const page = await live.request(frame);
        for (const m of page.mails) mails.set(m.id, m);
        if (!page.more || !page.mails.length) break;
        after = page.mails[page.mails.length - 1].id;
      }
    } catch (err) {
      replace(el, back(), h("p", { class: "error" }, t(err.code === "not_found" ? "mail.thread_gone" : "error.internal")));
      if (err.code !== "not_found") fail(err);
      return;
    }
    render();
    markRead();
  }

  function markRead() {
    for (const m of mails.values()) {
      if (!m.read) live.request({ type: "mark_mail", id: m.id, read: true }).catch(() => {});
    }
  }

  // A change in the mailbox (a mailbox channel event) about one of this thread's mails.
  function apply(event) {
    const m = event.mail;
    if (m.state === "deleted") mails.delete(m.id);
    else mails.set(m.id, m);
    render();
    if (event.kind === "mail.received" && !m.read) markRead(); // it arrived while being read
  }

  function button(label, action, onclick, key, attrs = {}) {
    return h("button", { type: "button", "data-action": action, "data-key": key || action, onclick, ...attrs }, label);
  }

  function render() {
    const keep = document.activeElement && el.contains(document.activeElement) ? document.activeElement.dataset.key : null;
    const list = [...mails.values()].sort((a, b) => a.id - b.id);
    if (!list.length) {
      replace(el, back(), h("p", {}, t("mail.thread_gone")));
      return;
    }
    replace(el,
      back(),
      h("h2", { id: "thread-title", tabindex: "-1" }, list[0].subject ?? "—"),
      actions(list.filter((m) => m.folder === folder)),
      h("ol", { class: "mails", "aria-label": t("mail.thread_mails", { n: list.length }) }, list.map((m) => h("li", {}, mailEl(m)))));
    if (keep) el.querySelector(`[data-key="${CSS.escape(keep)}"]`)?.focus();
  }

  function mailEl(m) {
    const mine = isMe(m.from);
    const open = !space().closed;
    const others = replyTargets(m, true);
    return h("article", { class: `mail${m.read ? "" : " unread"}`, "data-id": m.id, "data-folder": m.folder, "aria-labelledby": `mail-${m.id}-subject` },
      h("h3", { id: `mail-${m.id}-subject` }, m.subject ?? "—"),
      h("p", { class: "from", "data-testid": "from" }, h("span", { class: "label" }, t("mail.from_label")), " ", person(m.from, people, m.from.role)),
      h("p", { class: "to", "data-testid": "to" }, h("span", { class: "label" }, t("mail.to_label")), " ",
        m.to.map((p, i) => [i ? ", " : "", person(p, people)])),
      h("p", { class: "date" }, h("time", { datetime: m.created_at }, formatLong(m.created_at)),
        m.folder !== folder ? h("span", { class: "where" }, t("mail.in_folder", { folder: folderName(m.folder) })) : null),
      mailText(m.text),
      h("div", { class: "actions" },
        open && (!mine || others.length) ? button(replyLabel(m, false), "reply", () => onReply(m, false), `reply-${m.id}`) : null,
        open && !mine && others.length > 1 ? button(replyLabel(m, true), "reply-all", () => onReply(m, true), `reply-all-${m.id}`) : null,
        !mine ? button(t("mail.report"), "report", () => report(m), `report-${m.id}`, { class: "quiet" }) : null));
  }

  // What can be done with the thread's mails in this folder.
  function actions(here) {
    if (!here.length) return h("p", { class: "hint" }, t("mail.not_here", { folder: folderName(folder) }));
    const bar = h("div", { class: "thread-actions", role: "group", "aria-label": t("mail.thread_actions") });
    const add = (label, action, fn) => bar.appendChild(button(label, action, () => run(fn)));
    if (folder === "archive") add(t("mail.unarchive"), "unarchive", () => move(here, origin, "mail.moved_back"));
    if (folder === "trash") add(t("mail.restore"), "restore", () => move(here, origin, "mail.restored"));
    if (folder === "inbox" || folder === "sent") add(t("mail.to_archive"), "archive", () => move(here, () => "archive", "mail.archived"));
    if (folder !== "trash") add(t("mail.to_trash"), "trash", () => move(here, () => "trash", "mail.trashed"));
    add(t("mail.mark_unread"), "unread", () => markUnread(here));
    if (folder === "trash") add(t("mail.delete"), "delete", () => remove(here));
    return bar;
  }

  async function run(fn) {
    if (busy) return;
    busy = true;
    try {
      await fn();
    } catch (err) {
      fail(err);
    } finally {
      busy = false;
    }
  }

  async function move(here, where, done) {
    for (const m of here) await live.request({ type: "move_mail", id: m.id, folder: where(m) });
    toast(t(done));
    onDone();
  }

  // The newest mail someone else wrote (your own otherwise) becomes unread again; the thread
  // closes, so that reading it does not mark it read at once.
  async function markUnread(here) {
    const target = [...here].reverse().find((m) => !isMe(m.from)) || here[here.length - 1];
    await live.request({ type: "mark_mail", id: target.id, read: false });
    toast(t("mail.marked_unread"));
    onDone();
  }

  async function remove(here) {
    if (!(await confirmed(t("mail.delete"), t("mail.delete_confirm", { n: here.length }), t("mail.delete")))) return;
    for (const m of here) await live.request({ type: "delete_mail", id: m.id });
    toast(t("mail.deleted"));
    onDone();
  }

  // A report makes this one mail — sender, recipients, subject, text, date — and the note visible
  // to the project's teacher admins and the platform moderators (docs/protocol.md, "Reports").
  async function report(m) {
    const answer = await dialog({
      title: t("mail.report_title"),
      fields: [
        h("p", { class: "explain" }, t("mail.report_explain")),
        field(t("mail.report_note"), "note", { multiline: true, maxlength: limit("max_note_chars", 500) }),
      ],
      confirm: t("mail.report"),
      testid: "report-mail-dialog",
    });
    if (answer === null) return;
    try {
      const ok = await live.request({ type: "report_mail", id: m.id, note: answer.note || "" });
      toast(t(ok.duplicate ? "mail.report_again" : "mail.reported"));
    } catch (err) {
      fail(err);
    }
  }

  return {
    el,
    threadId,
    load,
    apply,
    render,
    holds: (id) => mails.has(id),
    focus: () => (el.querySelector("#thread-title") || el).focus(),
  };
}
