// A project's moderation: its queue of open reports, live — each with one click to the message
// in its room, to hide it, to mute its author, and to close the report with a note —, the
// reports closed (who closed them, when, why), and the mutes in force (lift one, mute someone).
// The panels are shared with the platform screen (screens/platform.js), which shows every
// project's queue to platform moderators. Everything goes through the HTTP routes of
// docs/protocol.md ("Moderation", "Mutes"); the live part is the queue's channel, which the shell
// follows from the start (queues.js) and routes here.

import { api, h, replace } from "../dom.js";
import { byName, formatDateTime, t } from "../i18n.js";
import { state } from "../state.js";
import { confirmed, dialog, fail, field, toast } from "../ui.js";
import { memberScopes, muteDialog, scopeLabel } from "./mute_dialog.js";

const MUTABLE = ["pupil_admin", "pupil_member", "visitor"]; // teachers are never muted
const PAGE = 50;

export function moderationView(space) {
  const panel = reviewPanel({ spaceId: space.id, channel: space.moderation, mutes: true });
  const el = h("section", { class: "moderation-view", "data-testid": "moderation" },
    h("h1", {}, t("nav.moderation"), " — ", space.name), panel.el);
  return {
    el,
    start: () => panel.start(),
    onEvent: (e) => panel.onEvent(e),
  };
}

// The room of the signed-in user's projects with that id, if they have it in their menu.
function knownRoom(roomId) {
  for (const space of state.me.spaces) {
    const room = space.rooms.find((r) => r.id === roomId);
    if (room) return room;
  }
  return null;
}

function maxNote() {
  return state.me.limits?.max_note_chars || 500;
}

// -- the review panel: open reports, closed reports, mutes ---------------------------------------

// `spaceId`: the project (null: every project, for platform moderators); `channel`: the queue
// whose events keep it live; `mutes`: whether it has the mutes tab; `projectName(id)`: names a
// report's project on a panel of every project.
export function reviewPanel({ spaceId, channel, mutes = false, projectName = null }) {
  const open = new Map(); // report id -> report, for the open tab
  let closed = []; // the closed reports loaded so far, newest first
  let closedBefore = null; // where the next page of the history starts
  let closedMore = false;
  let closedLoaded = false;
  let tab = "open";
  const body = h("div", { class: "review-body" });
  const tabs = h("div", { class: "tabs", role: "group", "aria-label": t("moderation.tabs") });
  const el = h("div", { class: "review" }, tabs, body);
  let mutesPanel = null;

  function reportsPath(status, before) {
    const query = new URLSearchParams({ limit: String(PAGE) });
    if (status) query.set("status", status);
    if (before) query.set("before", String(before));
    return spaceId === null ? `/api/moderation/reports?${query}` : `/api/spaces/${spaceId}/reports?${query}`;
  }

  // The tabs are made once and updated in place: a live report never takes the keyboard's focus
  // away from where it is.
  const tabButtons = {};
  let tabNames = "";
  function renderTabs() {
    const names = ["open", "closed", ...(mutes && spaceId !== null ? ["mutes"] : [])];
    for (const name of names) {
      tabButtons[name] = tabButtons[name] || h("button", { type: "button", "data-tab": name, onclick: () => { tab = name; render(); } });
      tabButtons[name].setAttribute("aria-pressed", String(name === tab));
      tabButtons[name].textContent = name === "open" ? t("moderation.tab.open", { n: open.size }) : t(`moderation.tab.${name}`);
    }
    if (names.join() !== tabNames) {
      tabNames = names.join();
      replace(tabs, names.map((name) => tabButtons[name]));
    }
  }

  let openList = null; // the open reports' list while the open tab is shown
  function render() {
    renderTabs();
    openList = null;
    if (tab === "open") {
      const sorted = [...open.values()].sort((a, b) => b.id - a.id);
      openList = h("ul", { class: "reports", "data-testid": "reports" }, sorted.length ? sorted.map(card) : emptyOpen());
      replace(body, h("h2", { tabindex: "-1" }, t("moderation.open_title")), openList);
    } else if (tab === "closed") {
      if (!closedLoaded) loadClosed();
      replace(body, h("h2", {}, t("moderation.closed_title")),
        h("ul", { class: "reports", "data-testid": "closed-reports" },
          closed.length ? closed.map(card) : h("li", { class: "empty" }, closedLoaded ? t("moderation.closed_empty") : t("moderation.loading"))),
        closedMore ? h("button", { type: "button", class: "secondary", onclick: loadClosed }, t("moderation.older")) : null);
    } else {
      mutesPanel = mutesPanel || mutesView(spaceId);
      replace(body, mutesPanel.el);
      mutesPanel.refresh();
    }
  }

  // The history: reports in any state, newest first, the open ones left out (they are above).
  async function loadClosed() {
    try {
      const page = await api("GET", reportsPath(null, closedBefore));
      for (const r of page.reports) if (r.status !== "open" && !closed.some((c) => c.id === r.id)) closed.push(r);
      closedBefore = page.reports.length ? page.reports[page.reports.length - 1].id : closedBefore;
      closedMore = page.more;
      closedLoaded = true;
      if (tab === "closed") render();
    } catch (err) {
      fail(err);
    }
  }

  function emptyOpen() {
    return h("li", { class: "empty" }, t("moderation.empty"));
  }

  // A report newly open: in its place (newest first), without redrawing the others.
  function addOpenCard(r) {
    if (!openList) return;
    openList.querySelector(".empty")?.remove();
    const next = [...openList.children].find((li) => Number(li.dataset.report) < r.id);
    openList.insertBefore(card(r), next || null);
  }

  // A report closed: out of the open list; the keyboard's focus, if it was in it, goes to the
  // list's heading rather than nowhere.
  function removeOpenCard(id) {
    const el = openList?.querySelector(`[data-report="${id}"]`);
    if (!el) return;
    const hadFocus = el.contains(document.activeElement);
    el.remove();
    if (!openList.children.length) openList.appendChild(emptyOpen());
    if (hadFocus) body.querySelector("h2")?.focus();
  }

  // A report redrawn (its message hidden, a queue event): the focus stays on the card.
  function replaceCard(r) {
    const old = body.querySelector(`[data-report="${r.id}"]`);
    if (!old) return;
    const focused = old.contains(document.activeElement);
    const fresh = card(r);
    old.replaceWith(fresh);
    if (focused) fresh.querySelector("[data-action]")?.focus();
  }

  // One report: who reported what, when and why; the reported words as reviewers see them; and,
  // while open, what a reviewer does about it.
  function card(r) {
    const project = projectName ? projectName(r.space) : null;
    const what = r.kind === "mail" ? t("moderation.kind.mail") : t("moderation.kind.message", { room: r.message.room.name });
    return h("li", { class: `report ${r.status}`, "data-report": r.id, "data-status": r.status },
      h("h3", {}, what, project ? h("span", { class: "project" }, ` — ${project}`) : null),
      h("p", { class: "meta" },
        t("moderation.reported_by", { name: r.reporter.name }), r.reporter.school ? ` (${r.reporter.school})` : "",
        " · ", h("time", { datetime: r.created_at }, formatDateTime(r.created_at))),
      h("p", { class: "note" }, r.note ? t("moderation.note", { note: r.note }) : t("moderation.no_note")),
      r.kind === "mail" ? mailBlock(r) : messageBlock(r.message),
      r.resolution ? h("p", { class: "resolution", "data-testid": "resolution" },
        t(`moderation.closed_by.${r.status}`, { name: r.resolution.by?.name || "—", at: formatDateTime(r.resolution.at) }),
        r.resolution.note ? ` — “${r.resolution.note}”` : "") : null,
      r.status === "open" ? actions(r) : h("div", { class: "actions" }, gotoLink(r.message)));
  }

  function messageBlock(m) {
    const states = [t(`moderation.state.${m.text === null ? "erased" : m.state}`)];
    if (m.edited_at && m.text !== null) states.push(t("moderation.state.edited"));
    return h("div", { class: "reported" },
      h("p", { class: "who" }, h("strong", {}, m.author.name || t("author.pupil")), m.author.school ? ` (${m.author.school})` : "",
        " · ", t(`area.${m.room.area}`), " · ", h("time", { datetime: m.created_at }, formatDateTime(m.created_at))),
      m.title ? h("p", { class: "title" }, m.title) : null,
      h("blockquote", {}, m.text ?? t("moderation.erased")),
      h("p", { class: "state", "data-testid": "message-state" }, states.join(" · ")));
  }

  // A mail report names the mail, not its words: reading them is the audited mail_reports
  // listing (docs/protocol.md, "Reports"), one report at a time, on the reviewer's asking.
  function mailBlock(r) {
    const box = h("div", { class: "reported mail-report" });
    const read = async () => {
      try {
        const page = await api("GET", `/api/spaces/${r.space}/mail/reports?before=${r.id + 1}&limit=1`);
        const found = page.reports.find((x) => x.id === r.id);
        if (!found) throw { code: "not_found" };
        const mail = found.mail;
        replace(box,
          h("p", { class: "who" }, h("strong", {}, mail.from?.name || "—"), mail.from?.school ? ` (${mail.from.school})` : "",
            " → ", (mail.to || []).map((p) => p.name).join(", "), " · ", h("time", { datetime: mail.created_at }, formatDateTime(mail.created_at))),
          h("p", { class: "title" }, mail.subject || "—"),
          h("blockquote", {}, mail.text),
          h("p", { class: "state" }, t("moderation.mail_seen")),
          r.status === "open" && mail.from ? h("button", {
            type: "button", class: "secondary", "data-action": "mute-sender",
            onclick: () => muteDialog(r.space, { user: mail.from, scope: "mail" }).then((ok) => ok && mutesPanel?.refresh()),
          }, t("moderation.mute_sender")) : null);
      } catch (err) {
        fail(err);
      }
    };
    return replace(box, h("p", {}, t("moderation.mail_report")),
      h("button", { type: "button", class: "secondary", "data-action": "read-mail", onclick: read }, t("moderation.read_mail")));
  }

  // The link from a report to its message, in its room (open reports and closed ones alike).
  function gotoLink(m) {
    const room = m ? knownRoom(m.room.id) : null;
    return m && (room || state.me.user.platform_role === "moderator")
      ? h("a", { class: "button", href: `#/room/${m.room.id}/message/${m.id}`, "data-action": "goto" }, t("moderation.goto")) : null;
  }

  function actions(r) {
    const m = r.message;
    return h("div", { class: "actions" },
      gotoLink(m),
      m && m.state === "visible" ? h("button", { type: "button", class: "secondary", "data-action": "hide", onclick: () => hide(r) }, t("action.hide")) : null,
      m && m.state === "hidden" ? h("button", { type: "button", class: "secondary", "data-action": "unhide", onclick: () => unhide(r) }, t("action.unhide")) : null,
      m && m.author?.id ? h("button", {
        type: "button", class: "secondary", "data-action": "mute",
        onclick: () => muteDialog(r.space, { user: m.author, scope: m.room.area, scopes: m.author.role ? memberScopes(r.space, m.author.role) : null }).then((ok) => ok && mutesPanel?.refresh()),
      }, t("moderation.mute_author")) : null,
      h("button", { type: "button", "data-action": "resolve", onclick: () => close(r, "resolved") }, t("moderation.resolve")),
      h("button", { type: "button", class: "secondary", "data-action": "dismiss", onclick: () => close(r, "dismissed") }, t("moderation.dismiss")));
  }

  // A message hidden by mistake (or before the report was looked at) is shown again from here.
  async function unhide(r) {
    const answer = await dialog({
      title: t("action.unhide"), testid: "unhide-dialog", confirm: t("action.unhide"),
      fields: [field(t("prompt.reason"), "reason", { multiline: true, maxlength: maxNote() })],
    });
    if (answer === null) return;
    try {
      await api("POST", `/api/rooms/${r.message.room.id}/messages/${r.message.id}/unhide`, { reason: answer.reason });
      r.message = { ...r.message, state: "visible" };
      replaceCard(r);
    } catch (err) {
      fail(err);
    }
  }

  async function hide(r) {
    const answer = await dialog({
      title: t("action.hide"), testid: "hide-dialog", confirm: t("action.hide"),
      fields: [field(t("prompt.reason"), "reason", { multiline: true, maxlength: maxNote(), value: r.note })],
    });
    if (answer === null) return;
    try {
      await api("POST", `/api/rooms/${r.message.room.id}/messages/${r.message.id}/hide`, { reason: answer.reason });
      r.message = { ...r.message, state: "hidden" };
      replaceCard(r);
      toast(t("moderation.hidden_done"));
    } catch (err) {
      fail(err);
    }
  }

  // Closing a report does nothing else: hiding and muting are their own acts (the audit log
  // has each).
  async function close(r, outcome) {
    const answer = await dialog({
      title: t(`moderation.close_title.${outcome}`), testid: "resolve-dialog", confirm: t(`moderation.${outcome === "resolved" ? "resolve" : "dismiss"}`),
      fields: [h("p", { class: "hint" }, t(`moderation.close_hint.${outcome}`)),
        field(t("moderation.close_note"), "note", { multiline: true, maxlength: maxNote() })],
    });
    if (answer === null) return;
    try {
      const done = await api("POST", `/api/reports/${r.id}/resolve`, { outcome, note: answer.note });
      settle(done.report);
      toast(t(`moderation.done.${outcome}`));
    } catch (err) {
      fail(err);
    }
  }

  // A report as it is now (from an answer or a queue event): open, or into the history.
  function settle(r) {
    if (spaceId !== null && r.space !== spaceId) return;
    if (r.status === "open") {
      const known = open.has(r.id);
      open.set(r.id, r);
      if (known) replaceCard(r);
      else addOpenCard(r);
      renderTabs();
      return;
    }
    open.delete(r.id);
    removeOpenCard(r.id);
    if (closedLoaded && !closed.some((c) => c.id === r.id)) {
      closed.unshift(r);
      closed.sort((a, b) => b.id - a.id);
      if (tab === "closed") render();
    }
    renderTabs();
  }

  async function start() {
    try {
      const page = await api("GET", reportsPath("open"));
      open.clear();
      for (const r of page.reports) open.set(r.id, r);
      render();
    } catch (err) {
      fail(err);
    }
  }

  render();
  return {
    el,
    start,
    onEvent(e) {
      if (e.channel === channel && e.report) settle(e.report);
    },
    // Another project (platform moderators' filter): start again.
    show(id) {
      spaceId = id;
      closed = [];
      closedBefore = null;
      closedMore = false;
      closedLoaded = false;
      mutesPanel = null;
      if (tab === "mutes" && id === null) tab = "open";
      open.clear();
      render();
      return start();
    },
  };
}

// -- mutes ---------------------------------------------------------------------------------------

// The project's mutes in force: who, where, until when, by whom, why; lift one; mute someone.
export function mutesView(spaceId) {
  const list = h("ul", { class: "mutes", "data-testid": "mutes" }, h("li", { class: "empty" }, t("moderation.loading")));
  const el = h("div", { class: "mutes-view" },
    h("h2", {}, t("mutes.title_list")),
    h("p", {}, h("button", { type: "button", "data-action": "mute-someone", onclick: muteSomeone }, t("mutes.add"))),
    list);

  function item(m) {
    return h("li", { class: "mute", "data-user": m.user.id, "data-scope": m.scope },
      h("p", {}, h("strong", {}, m.user.name), m.user.school ? ` (${m.user.school})` : "", " — ", scopeLabel(m.scope)),
      h("p", { class: "meta" }, t("mutes.until", { until: formatDateTime(m.until) }),
        m.muted_by ? ` · ${t("mutes.by", { name: m.muted_by.name })}` : ""),
      m.reason ? h("p", { class: "note" }, t("mutes.reason_is", { reason: m.reason })) : null,
      h("button", { type: "button", class: "secondary", "data-action": "unmute", onclick: () => lift(m) }, t("mutes.lift")));
  }

  async function refresh() {
    try {
      const page = await api("GET", `/api/spaces/${spaceId}/mutes`);
      replace(list, page.mutes.length ? page.mutes.map(item) : h("li", { class: "empty" }, t("mutes.empty")));
    } catch (err) {
      fail(err);
    }
  }

  async function lift(m) {
    if (!(await confirmed(t("mutes.lift_title"), t("mutes.lift_text", { name: m.user.name, scope: scopeLabel(m.scope) }), t("mutes.lift"), { danger: false }))) return;
    try {
      await api("DELETE", `/api/spaces/${spaceId}/mutes/${m.user.id}/${m.scope}`);
      toast(t("mutes.lifted", { name: m.user.name }));
      refresh();
    } catch (err) {
      fail(err);
    }
  }

  async function muteSomeone() {
    try {
      const found = await api("GET", `/api/spaces/${spaceId}/members`);
      const people = found.members.filter((p) => MUTABLE.includes(p.role)).sort((a, b) => byName(a.name, b.name));
      if (!people.length) {
        toast(t("mutes.nobody"));
        return;
      }
      if (await muteDialog(spaceId, { people })) refresh();
    } catch (err) {
      fail(err);
    }
  }

  return { el, refresh };
}
