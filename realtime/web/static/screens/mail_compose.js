// TwinMail: writing a mail — the address book (the members you may write to, by role and by school,
// with a search box that filters as you type), the chosen recipients, the subject and the text,
// each limit said before the server has to refuse it. What is typed is kept as a draft on this
// device while it is typed, so leaving TwinMail (or a reload) loses nothing; sending clears it.

import { h, replace } from "../dom.js";
import { byName, errorText, formatList, t } from "../i18n.js";
import { clientId } from "../live.js";
import { state } from "../state.js";
import { confirmed, fail, toast } from "../ui.js";
import { badge, badgeOf, chars, drafts, limit, person, quotation } from "./mail_common.js";

const ROLE_ORDER = ["teacher", "pupil", "visitor"];

// Lower case, without accents: "zoe" finds "Zoé", "ecole" finds "École".
function fold(s) {
  return (s || "").normalize("NFD").replace(/\p{Diacritic}/gu, "").toLowerCase();
}

// The subject a reply gets, as the server would give it (docs/protocol.md, "Threads and replies").
export function replySubject(subject) {
  const s = subject || "";
  return (/^re:/i.test(s) ? s : `Re: ${s}`).slice(0, 200);
}

// A draft for a new mail or a reply: {key, to: [person], subject, text, reply_to, thread_id, client_id}.
export function replyDraft(mail, targets) {
  return {
    key: `reply:${mail.id}`, to: targets, subject: replySubject(mail.subject), text: "",
    reply_to: mail.id, thread_id: mail.thread_id, client_id: null,
  };
}

export function newDraft() {
  return { key: "new", to: [], subject: "", text: "", reply_to: null, thread_id: null, client_id: null };
}

// book: the address book (mail_recipients' members) or null when it could not be read.
// replyMail: the mail answered, when known (for the quote); getReplyMail() fetches it otherwise.
export function composer({ space, people, book, draft, replyMail, getReplyMail, leftOut = [], onSent, onBack, backLabel }) {
  const live = state.live;
  const maxTo = limit("max_mail_recipients", 50);
  const maxSubject = limit("max_subject_chars", 200);
  const maxText = limit("max_text_chars", 4000);
  const chosen = new Map(draft.to.map((p) => [p.id, p]));
  const reply = draft.reply_to != null;
  let clientRef = draft.client_id;
  let sending = false;

  const error = h("p", { class: "error", role: "alert", id: "compose-error", "data-testid": "compose-error" });
  const chosenList = h("ul", { class: "chosen", "data-testid": "chosen", "aria-labelledby": "compose-to" });
  const toHint = h("p", { class: "hint", id: "compose-to-hint", "aria-live": "polite" });
  const search = h("input", { type: "search", id: "mail-search", autocomplete: "off", "aria-describedby": "mail-search-found", "data-testid": "mail-search" });
  const found = h("p", { class: "hint", id: "mail-search-found", "aria-live": "polite" });
  const groups = h("div", { class: "book-groups" });
  const subject = h("input", { id: "mail-subject", value: draft.subject, autocomplete: "off", "aria-describedby": "mail-subject-count" });
  const subjectCount = h("span", { class: "counter", id: "mail-subject-count" });
  const text = h("textarea", { id: "mail-text", rows: 8, "aria-describedby": "mail-text-count" });
  text.value = draft.text;
  const textCount = h("span", { class: "counter", id: "mail-text-count" });
  const sendButton = h("button", { type: "submit", class: "primary", "data-action": "send" }, t("mail.send"));
  const boxes = new Map(); // member id -> checkbox

  function save() {
    drafts.put(space().id, draft.key, current());
    drafts.setOpen(space().id, draft.key);
  }

  // Nothing of one's own in it: no words, and for a new mail no subject or recipient either.
  const blank = () => !text.value.trim() && (reply || (!subject.value.trim() && !chosen.size));

  function current() {
    return { ...draft, to: [...chosen.values()], subject: subject.value, text: text.value, client_id: clientRef };
  }

  // Leaving the composer for something else in TwinMail: the draft stays (found again by "New
  // mail" or "Reply"), but it no longer opens by itself; a draft with no words is not kept.
  function leave() {
    if (blank()) drafts.remove(space().id, draft.key);
    else drafts.setOpen(space().id, null);
  }

  // Leaving TwinMail with the composer open: the draft is kept and opens again on coming back.
  function park() {
    if (blank()) drafts.remove(space().id, draft.key);
    else save();
  }

  // -- recipients -----------------------------------------------------------------------------

  function renderChosen() {
    replace(chosenList, chosen.size ? [...chosen.values()].map((p) => h("li", { "data-user": p.id },
      person(p, people, p.role),
      h("button", { type: "button", class: "remove", "aria-label": t("mail.remove", { name: p.name }), onclick: () => toggle(p, false) },
        h("span", { "aria-hidden": "true" }, "×"))))
      : h("li", { class: "nobody" }, t("mail.nobody_chosen")));
    const full = chosen.size >= maxTo;
    toHint.textContent = full ? t("mail.to_full", { max: maxTo }) : t("mail.to_count", { n: chosen.size, max: maxTo });
    toHint.classList.toggle("over", chosen.size > maxTo);
    for (const [id, box] of boxes) {
      box.checked = chosen.has(id);
      box.disabled = full && !box.checked;
    }
  }

  function toggle(p, on) {
    if (on && chosen.size >= maxTo) return;
    if (on) chosen.set(p.id, p);
    else chosen.delete(p.id);
    renderChosen();
    save();
    if (!on && !boxes.has(p.id)) search.focus(); // its remove button is gone: land somewhere useful
  }

  function renderBook() {
    if (!book) {
      replace(groups, h("p", { class: "error" }, t("mail.book_failed")));
      return;
    }
    const byGroup = new Map();
    for (const m of book) {
      const role = badgeOf(m.role);
      const key = `${ROLE_ORDER.indexOf(role)}|${m.school || ""}`;
      if (!byGroup.has(key)) byGroup.set(key, { role, school: m.school || "", members: [] });
      byGroup.get(key).members.push(m);
    }
    // Groups by role, then school; people by name — each in the reader's language's order.
    const ordered = [...byGroup.values()].sort((a, b) => ROLE_ORDER.indexOf(a.role) - ROLE_ORDER.indexOf(b.role) || byName(a.school, b.school));
    for (const g of ordered) g.members.sort((a, b) => byName(a.name, b.name));
    boxes.clear();
    replace(groups, ordered.length ? ordered.map((g, i) => h("fieldset", { class: "book-group", "data-role": g.role },
      h("legend", { id: `book-group-${i}` }, t(`mail.group.${g.role}`), g.school ? ` — ${g.school}` : ""),
      g.members.map((m) => {
        const card = { id: m.id, name: m.name, school: m.school, role: badgeOf(m.role) };
        const box = h("input", { type: "checkbox", value: m.id, id: `mail-to-${m.id}`, onchange: () => toggle(card, box.checked) });
        boxes.set(m.id, box);
        return h("label", { class: "recipient", for: `mail-to-${m.id}`, "data-search": fold(`${m.name} ${m.school || ""}`) },
          box, h("span", { class: "name" }, m.name), " ", badge(card.role));
      })))
      : h("p", {}, t("mail.book_empty")));
    filter();
  }

  function filter() {
    const q = fold(search.value.trim());
    let shown = 0;
    for (const group of groups.querySelectorAll(".book-group")) {
      let any = false;
      for (const label of group.querySelectorAll(".recipient")) {
        const match = !q || label.dataset.search.includes(q);
        label.hidden = !match;
        if (match) {
          any = true;
          shown++;
        }
      }
      group.hidden = !any;
    }
    found.textContent = q ? (shown ? t("mail.book_found", { n: shown }) : t("mail.book_none", { q: search.value.trim() })) : "";
  }

  search.addEventListener("input", filter);
  // Enter in the search box ticks the one person it found, and never sends the mail.
  search.addEventListener("keydown", (ev) => {
    if (ev.key !== "Enter") return;
    ev.preventDefault();
    const visible = [...groups.querySelectorAll(".recipient:not([hidden]) input:not(:disabled)")].filter((b) => !b.closest("[hidden]"));
    if (visible.length === 1 && !visible[0].checked) visible[0].click();
  });

  // -- subject and text -----------------------------------------------------------------------

  function counter(input, out, max, required) {
    const n = chars(input.value);
    const over = n > max;
    out.textContent = over ? t("mail.too_long", { n, max }) : t("mail.chars", { n, max });
    out.classList.toggle("over", over);
    input.setAttribute("aria-invalid", String(over));
    if (!over && required !== undefined) input.toggleAttribute("required", required);
  }

  function counters() {
    counter(subject, subjectCount, maxSubject, !reply);
    counter(text, textCount, maxText, true);
  }

  subject.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter") {
      ev.preventDefault(); // on to the text, not "send" half-written
      text.focus();
    }
  });

  for (const input of [subject, text]) {
    input.addEventListener("input", () => {
      counters();
      save();
      error.textContent = "";
    });
  }

  async function quote() {
    let mail = replyMail;
    try {
      mail = mail || (await getReplyMail());
    } catch (err) {
      fail(err);
      return;
    }
    if (!mail?.text) return;
    replyMail = mail;
    let block = quotation(mail);
    const room = maxText - chars(text.value);
    if (chars(block) > room) block = [...block].slice(0, Math.max(0, room - 1)).join("") + "\n"; // within the limit
    text.value = block + text.value;
    counters();
    save();
    text.focus();
    text.setSelectionRange(text.value.length, text.value.length);
  }

  // -- sending --------------------------------------------------------------------------------

  function check() {
    if (!chosen.size) return [t("mail.need_to"), search];
    if (chosen.size > maxTo) return [t("mail.to_full", { max: maxTo }), search];
    if (!reply && !subject.value.trim()) return [t("mail.need_subject"), subject];
    if (chars(subject.value.trim()) > maxSubject) return [t("mail.too_long", { n: chars(subject.value.trim()), max: maxSubject }), subject];
    if (!text.value.trim()) return [t("mail.need_text"), text];
    if (chars(text.value) > maxText) return [t("mail.too_long", { n: chars(text.value), max: maxText }), text];
    return null;
  }

  async function send(ev) {
    ev.preventDefault();
    if (sending) return;
    const problem = check();
    if (problem) {
      error.textContent = problem[0];
      problem[1].focus();
      return;
    }
    // One client_id per draft, kept with it: sending again after a lost answer stores it once.
    clientRef = clientRef || clientId();
    save();
    const frame = { type: "send_mail", space: space().id, to: [...chosen.keys()], text: text.value, client_id: clientRef };
    if (subject.value.trim()) frame.subject = subject.value.trim();
    if (reply) frame.reply_to = draft.reply_to;
    sending = true;
    sendButton.disabled = true;
    error.textContent = "";
    try {
      const ok = await live.request(frame);
      drafts.remove(space().id, draft.key);
      toast(t("mail.sent_ok"));
      onSent(ok);
    } catch (err) {
      const names = (err.recipients || []).map((id) => chosen.get(id)?.name || `#${id}`);
      error.textContent = names.length ? t("mail.refused", { names: formatList(names), why: errorText(err) }) : errorText(err);
      if (err.code !== "network" && err.code !== "unavailable" && err.code !== "rate_limited") {
        clientRef = null; // refused: nothing was stored under it
        save();
      }
    } finally {
      sending = false;
      sendButton.disabled = false;
    }
  }

  async function discard() {
    if ((text.value.trim() || subject.value.trim()) && !(await confirmed(t("mail.discard"), t("mail.discard_confirm"), t("mail.discard")))) return;
    drafts.remove(space().id, draft.key);
    onBack({ discarded: true });
  }

  const title = reply ? t("mail.reply_title", { subject: replyMail?.subject || draft.subject }) : t("mail.compose");
  const form = h("form", { class: "compose", "data-testid": "composer", "aria-labelledby": "compose-title", novalidate: true },
    h("button", { type: "button", class: "back", "data-action": "back", onclick: () => { leave(); onBack({}); } },
      h("span", { "aria-hidden": "true" }, "← "), backLabel),
    h("h2", { id: "compose-title", tabindex: "-1" }, title),
    h("section", { class: "to", "aria-labelledby": "compose-to" },
      h("h3", { id: "compose-to" }, t("mail.to")),
      chosenList, toHint,
      leftOut.length ? h("p", { class: "note", "data-testid": "left-out" }, t("mail.left_out", { names: formatList(leftOut.map((p) => (p.id === null ? t("author.pupil_of", { school: p.school || "" }) : p.name))) })) : null,
      h("details", { class: "book", open: !reply || !chosen.size },
        h("summary", {}, t("mail.book")),
        h("label", { for: "mail-search" }, t("mail.search")), search, found,
        groups)),
    h("div", { class: "field" }, h("label", { for: "mail-subject" }, reply ? t("mail.subject_optional") : t("mail.subject")), subject, subjectCount),
    h("div", { class: "field" }, h("label", { for: "mail-text" }, t("mail.text")), text, textCount),
    error,
    h("div", { class: "compose-actions" },
      sendButton,
      reply ? h("button", { type: "button", class: "secondary", "data-action": "quote", onclick: quote }, t("mail.quote")) : null,
      h("button", { type: "button", class: "secondary", "data-action": "discard", onclick: discard }, t("mail.discard"))));
  form.addEventListener("submit", send);

  renderBook();
  renderChosen();
  counters();

  return {
    el: form,
    key: draft.key,
    leave,
    park,
    current,
    replyMail: () => replyMail,
    focus: () => (reply && chosen.size ? text : search).focus(),
    setBook(next) {
      book = next;
      renderBook();
      renderChosen();
    },
  };
}
