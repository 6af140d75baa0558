// A project's activity, live, in words: each record a sentence in the reader's language
// (`kind.<kind>`; never a raw event name), grouped by day, newest first, each line a link to
// what it names — a message or a journal entry opens its room at it, a room opens the room, a
// member their page in the members' list, a service's record its page elsewhere. Older records
// on demand.

import { api, h, replace } from "../dom.js";
import { formatDate, formatTime, has, t } from "../i18n.js";
import { externalLink } from "../links.js";
import { currentRoom, hasMembersScreen, state } from "../state.js";
import { fail } from "../ui.js";

const PAGE = 50;
const MESSAGE_KINDS = new Set(["message.posted", "message.edited", "message.hidden", "journal.entry", "journal.comment"]);
const ROOM_KINDS = new Set(["room.created", "room.renamed", "room.archived", "room.unarchived"]);
const MEMBER_KINDS = new Set(["member.joined", "member.role_changed", "member.removed"]);
// A member's role in the project, as `actor.role` and `details.role` give it, to its badge.
const BADGES = { teacher_admin: "teacher", teacher_member: "teacher", pupil_admin: "pupil", pupil_member: "pupil",
  visitor: "visitor", moderator: "moderator", bot: "bot" };

function roleWord(role) {
  return role && has(`feed.role.${role}`) ? t(`feed.role.${role}`) : t("feed.role.unknown");
}

function actorName(a) {
  if (!a.actor) return a.details?.by || t("feed.someone");
  if (a.actor.name) return a.actor.name;
  return a.actor.school ? t("author.pupil_of", { school: a.actor.school }) : t("author.pupil");
}

// The record in words.
export function sentence(a) {
  const d = a.details || {};
  const vars = {
    actor: actorName(a),
    room: a.room?.name || t("feed.a_room"),
    user: a.user?.name || t("feed.someone"),
    role: roleWord(d.role),
    was: a.kind === "member.role_changed" ? roleWord(d.was) : (d.was || ""),
    title: d.title || "",
  };
  return t(template(a), vars); // a service's record (document.added, …) by its service
}

// A record with nobody behind it — a room that came with the project (made by its set-up, not by
// a member), a project closed from the command line — has its own words where the sentence would
// name someone: "The room Chat was opened", never "Someone opened the room Chat".
function template(a) {
  if (!a.actor && !a.details?.by && has(`kind.${a.kind}.no_actor`)) return `kind.${a.kind}.no_actor`;
  if (has(`kind.${a.kind}`)) return `kind.${a.kind}`;
  const service = a.kind.split(".")[0];
  return has(`kind.${service}`) ? `kind.${service}` : "feed.unknown";
}

// Whether the record's sentence names its `actor` (the actor's badge goes with it) — a member
// joining or leaving names the member instead.
function names(a, who) {
  return a.actor && t(template(a)).includes(`{${who}}`);
}

export function feedView(space) {
  const live = state.live;
  const channel = space.feed || `feed:${space.id}`;
  const days = h("div", { class: "feed-days", "data-testid": "feed" });
  const older = h("button", { type: "button", class: "older", hidden: true, "data-testid": "feed-older" }, t("feed.older"));
  // What arrives live is said once to screen readers (the list itself is not a live region:
  // loading older records would read them all out).
  const announcer = h("p", { class: "visually-hidden", "aria-live": "polite", "data-testid": "feed-announcer" });
  const records = new Map(); // seq -> record
  let oldest = null;
  const view = { el: null };

  // Where the line leads: an address of this page, an address elsewhere, or nowhere.
  function target(a) {
    const room = a.room && currentRoom(space.id, a.room.id); // one the reader may open now
    if (MESSAGE_KINDS.has(a.kind) && room && a.message_id) return { href: `#/room/${room.id}/message/${a.message_id}` };
    if (ROOM_KINDS.has(a.kind) && room) return { href: `#/room/${room.id}` };
    // A member's line links to the Members screen only for those who have it (teachers).
    if (MEMBER_KINDS.has(a.kind) && a.user?.id && hasMembersScreen(space.role)) return { href: `#/members/${space.id}/${a.user.id}` };
    if (a.details?.link) return { external: a.details.link };
    return null;
  }

  function line(a) {
    const words = sentence(a);
    const to = target(a);
    const badge = BADGES[a.actor?.role];
    return h("li", { class: "feed-line", "data-seq": a.seq, "data-kind": a.kind },
      h("time", { datetime: a.created_at }, formatTime(a.created_at)),
      to?.href ? h("a", { href: to.href, class: "link" }, words)
        : to?.external ? externalLink(to.external, words)
          : h("span", {}, words),
      badge && names(a, "actor") ? h("span", { class: `badge badge-${badge}` }, t(`badge.${badge}`)) : null);
  }

  function dayOf(iso) {
    const d = new Date(iso);
    return new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime();
  }

  function dayList(a) {
    const day = dayOf(a.created_at);
    let section = [...days.children].find((s) => Number(s.dataset.day) === day);
    if (!section) {
      section = h("section", { class: "feed-day", "data-day": day, "aria-labelledby": `feed-day-${day}` },
        h("h2", { id: `feed-day-${day}` }, formatDate(a.created_at)),
        h("ol", { class: "feed" }));
      const after = [...days.children].find((s) => Number(s.dataset.day) < day);
      days.insertBefore(section, after || null);
    }
    return section.querySelector("ol");
  }

  function add(a) {
    if (records.has(a.seq)) return;
    records.set(a.seq, a);
    if (oldest === null || a.seq < oldest) oldest = a.seq;
    days.querySelector(".empty")?.remove();
    const list = dayList(a);
    const after = [...list.children].find((li) => Number(li.dataset.seq) < a.seq);
    list.insertBefore(line(a), after || null);
  }

  function renderAll() {
    replace(days);
    const all = [...records.values()].sort((x, y) => y.seq - x.seq);
    records.clear();
    for (const a of all) add(a);
    if (!all.length) days.appendChild(h("p", { class: "empty" }, t("feed.empty")));
  }

  async function page(before) {
    const found = await api("GET", `/api/spaces/${space.id}/activity?limit=${PAGE}${before ? `&before=${before}` : ""}`);
    for (const a of found.activities) add(a);
    older.hidden = !found.more;
    return found;
  }

  older.addEventListener("click", async () => {
    older.disabled = true;
    try {
      await page(oldest);
    } catch (err) {
      fail(err);
    } finally {
      older.disabled = false;
    }
  });

  view.render = () => {
    view.el = replace(view.el || h("section", { class: "feed-view", "data-testid": "feed-view" }),
      h("h1", {}, t("nav.feed"), h("span", { class: "area" }, space.name)),
      announcer, days, older);
    renderAll();
  };
  view.render();
  view.start = async () => {
    try {
      records.clear();
      const first = await page(null);
      renderAll();
      const ok = await live.subscribe(channel, first.head);
      if (ok?.resync) view.start();
    } catch (err) {
      fail(err);
    }
  };
  view.dispose = () => live.unsubscribe(channel);
  view.rightsChanged = () => renderAll(); // rooms renamed or gone: words and links follow
  view.onEvent = (e) => {
    if (e.channel !== channel || records.has(e.seq)) return;
    add(e);
    announcer.textContent = sentence(e);
  };
  return view;
}
