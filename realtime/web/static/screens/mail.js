// TwinMail: a project's private mailbox — folders, threads, reading and writing a mail.

import { h, replace } from "../dom.js";
import { formatTime, t } from "../i18n.js";
import { clientId } from "../live.js";
import { state } from "../state.js";
import { fail, toast } from "../ui.js";

export function mailView(space) {
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
