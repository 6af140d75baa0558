// TwinMail: a project's private mailbox — the folders with their unread counts, the threads of the
// open folder (20 at a time, older ones on demand), and beside them (on a phone: instead of them,
// with a way back) the thread being read or the mail being written. Everything is live: the
// mailbox channel's events (followed by app.js from the start) update the counts, the list and
// the open thread without a reload. docs/protocol.md, "TwinMail".

import { h, replace } from "../dom.js";
import { formatList, t } from "../i18n.js";
import { currentSpace, state } from "../state.js";
import { fail } from "../ui.js";
import { composer, newDraft, replyDraft } from "./mail_compose.js";
import { FOLDERS, People, badge, drafts, formatShort, isMe, limit } from "./mail_common.js";
import { replyTargets, threadPane } from "./mail_thread.js";

const PAGE = 20;

// `threadId`: the thread to open at once (the address #/mail/<project>/thread/<id>).
export function mailView(first, { threadId: openAtFirst = null } = {}) {
  const live = state.live;
  const spaceId = first.id;
  const space = () => currentSpace(spaceId) || first; // a fresh welcome replaces the project's entry
  const people = new People(first);
  let book = null; // the address book: members you may write to (mail_recipients)
  let bookLoading = null;
  let folder = "inbox";
  let threads = []; // the threads listed, newest first
  let more = false;
  let listToken = 0;
  let refreshTimer = null;
  let pane = null; // the reader's content: a thread pane or a composer (null: nothing open)
  let paneKind = null; // "thread" | "compose"
  let composeFrom = null; // the thread the composer was opened from
  const view = { el: h("section", { class: "mail-view", "data-testid": "mail" }) };

  const folderBar = h("div", { class: "folders", role: "group", "aria-labelledby": "mail-folders" });
  const list = h("ul", { class: "threads", "data-testid": "threads", "aria-labelledby": "mail-list-title", "aria-busy": "true" });
  const older = h("button", { type: "button", class: "older secondary", "data-testid": "older", hidden: true }, t("mail.older"));
  const readerEl = h("div", { class: "mail-reader", "data-testid": "reader" });
  const listTitle = h("h2", { id: "mail-list-title" });
  const composeButton = h("button", { type: "button", class: "compose-new", "data-action": "compose", onclick: () => newMail() });

  // -- folders and threads --------------------------------------------------------------------

  function renderFolders() {
    const unread = space().mailbox?.unread || {};
    replace(folderBar, FOLDERS.map((f) => h("button", {
      type: "button", "aria-pressed": String(f === folder), "data-testid": `folder-${f}`, onclick: () => chooseFolder(f),
    }, t(`mail.${f}`), unread[f] ? h("span", { class: "count", "data-testid": `count-${f}` }, t("mail.unread", { n: unread[f] })) : null)));
  }

  function chooseFolder(f) {
    folder = f;
    closePane();
    threads = [];
    more = false;
    renderFolders();
    renderList();
    loadList();
  }

  function threadItem(th) {
    const last = th.last;
    const mine = isMe(last.from);
    const who = mine
      ? t("mail.to_names", { names: formatList(last.to.map((p) => p.name)) })
      : last.from.name;
    const current = paneKind === "thread" && pane?.threadId === th.thread_id;
    return h("li", { class: `thread-item${th.unread ? " unread" : ""}`, "data-thread": th.thread_id },
      h("button", { type: "button", class: "thread-open", "data-thread": th.thread_id, "aria-current": current ? "true" : null, onclick: () => openThread(th.thread_id) },
        h("span", { class: "who" }, who, mine || !last.from.role ? null : [" ", badge(last.from.role)]),
        h("span", { class: "subject" }, last.subject ?? "—"),
        h("span", { class: "meta" },
          h("time", { datetime: last.created_at }, formatShort(last.created_at)),
          th.mails > 1 ? h("span", {}, ` · ${t("mail.count", { n: th.mails })}`) : null,
          th.unread ? h("span", { class: "count" }, t("mail.unread", { n: th.unread })) : null)));
  }

  function renderList() {
    listTitle.textContent = t(`mail.${folder}`);
    const focused = list.contains(document.activeElement) ? document.activeElement.dataset.thread : null;
    replace(list, threads.length ? threads.map(threadItem) : h("li", { class: "empty" }, t("mail.empty")));
    older.hidden = !more;
    if (focused) list.querySelector(`.thread-open[data-thread="${focused}"]`)?.focus(); // a live update keeps the keyboard's place
  }

  function learn(mails) {
    for (const m of mails) people.learn(m.from, m.from?.role);
  }

  // The first page again after a change in the mailbox — down to the oldest thread listed now, so
  // the pages loaded with "older" stay (within a few pages more than were listed).
  async function loadList({ keep = false } = {}) {
    const token = ++listToken;
    const f = folder;
    const max = limit("max_page", 100);
    const want = keep ? Math.max(threads.length, PAGE) : PAGE;
    const oldest = keep && threads.length ? threads[threads.length - 1].thread_id : null;
    list.setAttribute("aria-busy", "true");
    const reached = (got) => got.length >= want && (oldest === null || got.length >= want + 3 * PAGE || got.some((th) => th.thread_id === oldest));
    try {
      let got = [];
      let page = null;
      do {
        const frame = { type: "mail_threads", space: spaceId, folder: f, limit: Math.min(max, Math.max(PAGE, want - got.length)) };
        if (got.length) frame.before = got[got.length - 1].last.id;
        page = await live.request(frame);
        got = got.concat(page.threads);
      } while (page.more && !reached(got));
      if (token !== listToken) return; // a newer load (or another folder) took over
      more = page.more;
      const end = oldest === null ? -1 : got.findIndex((th) => th.thread_id === oldest);
      if (end >= 0 && end + 1 < got.length) {
        got = got.slice(0, end + 1); // no more than was listed: the rest stays behind "older"
        more = true;
      }
      threads = got;
      learn(threads.map((th) => th.last));
      renderList();
      list.removeAttribute("aria-busy");
    } catch (err) {
      if (token === listToken) {
        list.removeAttribute("aria-busy");
        fail(err);
      }
    }
  }

  older.addEventListener("click", async () => {
    if (!threads.length) return;
    older.disabled = true;
    const token = listToken;
    try {
      const page = await live.request({ type: "mail_threads", space: spaceId, folder, limit: PAGE, before: threads[threads.length - 1].last.id });
      if (token !== listToken) return;
      const known = new Set(threads.map((th) => th.thread_id));
      const added = page.threads.filter((th) => !known.has(th.thread_id));
      threads = threads.concat(added);
      more = page.more;
      learn(added.map((th) => th.last));
      renderList();
      // The keyboard goes on where the new threads start.
      if (added.length) list.querySelector(`.thread-open[data-thread="${added[0].thread_id}"]`)?.focus();
    } catch (err) {
      fail(err);
    } finally {
      older.disabled = false;
    }
  });

  function scheduleRefresh() {
    clearTimeout(refreshTimer);
    refreshTimer = setTimeout(() => loadList({ keep: true }), 150); // a thread moved is several events
  }

  // -- the reader: a thread, or a mail being written --------------------------------------------

  function placeholder() {
    return h("p", { class: "placeholder" }, t(threads.length ? "mail.choose" : "mail.nothing_open"));
  }

  function showPane(next, kind) {
    if (paneKind === "compose" && pane !== next) pane.leave();
    pane = next;
    paneKind = kind;
    view.el.classList.toggle("reading", Boolean(next));
    replace(readerEl, next ? next.el : placeholder());
    renderList(); // which thread is open
    renderComposeButton();
  }

  // "New mail", or "New mail (draft)" when one is waiting.
  function renderComposeButton() {
    const label = t("mail.compose");
    composeButton.textContent = drafts.get(spaceId, "new") ? t("mail.with_draft", { label }) : label;
  }

  function closePane() {
    showPane(null, null);
    if (location.hash !== `#/mail/${spaceId}`) history.replaceState(null, "", `#/mail/${spaceId}`); // no thread open
  }

  // Back to the list (on a phone the list comes back in place of the reader): the keyboard lands
  // on the thread it came from, or on the folders.
  function backToList(threadId) {
    closePane();
    const target = threadId && list.querySelector(`.thread-open[data-thread="${threadId}"]`);
    (target || folderBar.querySelector("[aria-pressed=true]"))?.focus();
  }

  async function openThread(threadId, { focus = true } = {}) {
    const next = threadPane({
      space, people, folder, threadId,
      onBack: () => backToList(threadId),
      onReply: (mail, all) => reply(mail, all),
      onDone: () => backToList(threadId),
      replyLabel: (mail, all) => {
        const label = t(all ? "mail.reply_all" : "mail.reply");
        return drafts.get(spaceId, `reply:${mail.id}`) ? t("mail.with_draft", { label }) : label;
      },
    });
    showPane(next, "thread");
    // The thread has its address: Back (a phone's too) returns to the list, a reload reopens it.
    const address = `#/mail/${spaceId}/thread/${threadId}`;
    if (location.hash !== address) history.pushState(null, "", address);
    await next.load();
    if (focus && pane === next) next.focus();
  }

  function ensureBook() {
    if (!bookLoading) {
      bookLoading = live.request({ type: "mail_recipients", space: spaceId }).then((ok) => {
        book = ok.members;
        for (const m of book) people.learn(m, m.role);
        if (pane?.setBook) pane.setBook(book);
        if (paneKind === "thread") pane.render(); // the To lines get their badges
        return book;
      }, (err) => {
        bookLoading = null; // asked again next time
        throw err;
      });
    }
    return bookLoading;
  }

  // from: the thread it was opened from, where "back" returns.
  async function openComposer(draft, { replyMail = null, leftOut = [], focus = true, from = paneKind === "thread" ? pane.threadId : null } = {}) {
    if (space().closed) return;
    try {
      await ensureBook();
    } catch (err) {
      fail(err);
    }
    const next = composer({
      space, people, book, draft, replyMail, leftOut,
      getReplyMail: async () => (await live.request({ type: "get_mail", id: draft.reply_to })).mail,
      backLabel: t("mail.back", { folder: t(`mail.${folder}`) }),
      onBack: () => (from ? openThread(from) : backToList(null)),
      onSent: (ok) => {
        // A new thread holds only the mail just sent: it is shown where it is, in Sent (in
        // another folder it would say that none of its mails is there).
        if (ok.thread_id === ok.id && folder !== "sent") chooseFolder("sent");
        else if (folder === "sent" || folder === "inbox") scheduleRefresh();
        openThread(ok.thread_id);
      },
    });
    showPane(next, "compose");
    composeFrom = from;
    if (focus) next.focus();
  }

  function newMail() {
    openComposer(drafts.get(spaceId, "new") || newDraft());
  }

  // A reply goes to whom the mail names, less those the address book does not hold (you may not
  // write to them: the server would refuse the whole mail), who are named instead.
  async function reply(mail, all) {
    const saved = drafts.get(spaceId, `reply:${mail.id}`);
    if (saved) {
      openComposer(saved, { replyMail: mail });
      return;
    }
    try {
      await ensureBook();
    } catch {
      // without the book, every recipient is offered: the server says who is refused
    }
    const allowed = book ? new Set(book.map((m) => m.id)) : null;
    const targets = replyTargets(mail, all).map((p) => ({ ...p, role: people.badge(p) }));
    const to = allowed ? targets.filter((p) => allowed.has(p.id)) : targets;
    const leftOut = allowed ? targets.filter((p) => !allowed.has(p.id)) : [];
    openComposer(replyDraft(mail, to.slice(0, limit("max_mail_recipients", 50))), { replyMail: mail, leftOut });
  }

  // Coming back to TwinMail: the draft that was open opens again.
  async function restoreDraft() {
    const key = drafts.open(spaceId);
    const draft = key && drafts.get(spaceId, key);
    if (!draft) return;
    let replyMail = null;
    if (draft.reply_to) {
      replyMail = await live.request({ type: "get_mail", id: draft.reply_to }).then((ok) => ok.mail, () => null);
    }
    if (!pane) openComposer(draft, { replyMail, focus: false });
  }

  // -- the screen -------------------------------------------------------------------------------

  view.render = () => {
    const s = space();
    replace(view.el,
      h("h1", {}, t("nav.mail"), " — ", s.name),
      h("div", { class: "mail-toolbar" },
        h("h2", { id: "mail-folders", class: "sr-only" }, t("mail.folders")),
        folderBar,
        s.closed
          ? h("p", { class: "hint", "data-testid": "mail-closed" }, t("mail.closed"))
          : composeButton),
      h("div", { class: "mail-body" },
        h("section", { class: "mail-list", "aria-labelledby": "mail-list-title" }, listTitle, list, older),
        readerEl));
    older.textContent = t("mail.older");
    renderComposeButton();
    renderFolders();
    renderList();
    if (paneKind === "thread") pane.render();
    else if (paneKind === "compose") {
      const draft = pane.current(); // written again (in the new language), as it stands
      const replyMail = pane.replyMail();
      pane = null;
      paneKind = null;
      openComposer(draft, { replyMail, from: composeFrom, focus: false });
    } else replace(readerEl, placeholder());
  };

  // The requests wait for the connection: a reload straight onto TwinMail opens the screen
  // before the socket's welcome.
  let started = false;
  let shape = "";
  const shapeOf = () => JSON.stringify([space().name, space().closed, space().role]);
  function begin() {
    started = true;
    shape = shapeOf();
    loadList();
    ensureBook().catch(() => {});
    if (openAtFirst) openThread(openAtFirst, { focus: false });
    else restoreDraft();
  }

  view.render();
  view.start = () => {
    if (live.ready) begin();
  };
  view.dispose = () => {
    clearTimeout(refreshTimer);
    if (paneKind === "compose") pane.park(); // kept, and opened again on coming back
  };
  // A welcome: the first one (then start), one after a reconnect, or rights that changed (a project
  // closed or reopened, renamed, a new role): drawn again only when this project changed.
  view.rightsChanged = () => {
    if (!currentSpace(spaceId)) return;
    if (!started) {
      begin();
      return;
    }
    if (shapeOf() !== shape) {
      shape = shapeOf();
      view.render();
    } else renderFolders();
    loadList({ keep: true });
    if (!book) ensureBook().catch(() => {});
  };
  view.channelEnded = (channel) => {
    if (channel === space().mailbox?.channel) replace(list, h("li", { class: "ended" }, t("error.not_member")));
  };
  view.onEvent = (e) => {
    if (e.channel !== space().mailbox?.channel || !e.mail) return;
    renderFolders(); // app.js took the event's unread counts
    learn([e.mail]);
    scheduleRefresh();
    if (paneKind === "thread" && (pane.threadId === e.mail.thread_id || pane.holds(e.mail.id))) pane.apply(e);
  };
  return view;
}
