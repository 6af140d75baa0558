// The moderation queues a reviewer follows from the moment they sign in — each project's they
// review (welcome's `moderation`), and every project's for a platform moderator (welcome's
// `user.moderation`) — so that the count of open reports stays live in the menu and in the
// page's title on every screen, not only on the moderation screen. Followed once each: live.js
// resumes them after a drop (queue events carry each report as it is now).

import { state } from "./state.js";

const open = new Map(); // channel -> Set of the ids of its open reports
const more = new Map(); // channel -> true when it has more open reports than one page counts
const followed = new Set();
let changed = () => {};
let live = null; // the connection they are followed on (a new sign-in starts again)

// The queues the signed-in user reviews now: channel -> project id (null: every project).
function wanted() {
  const found = new Map();
  if (state.me?.user?.moderation) found.set(state.me.user.moderation, null);
  for (const space of state.me?.spaces || []) if (space.moderation) found.set(space.moderation, space.id);
  return found;
}

// Called with every welcome: follows the new queues, forgets those no longer reviewed.
export function followQueues(onChange) {
  changed = onChange;
  if (live !== state.live) {
    live = state.live;
    followed.clear();
    open.clear();
    more.clear();
  }
  const queues = wanted();
  for (const channel of [...followed]) {
    if (queues.has(channel)) continue;
    followed.delete(channel);
    open.delete(channel);
    state.live.unsubscribe(channel);
  }
  for (const [channel, spaceId] of queues) {
    if (followed.has(channel)) continue;
    followed.add(channel);
    count(channel, spaceId);
  }
}

async function count(channel, spaceId) {
  try {
    await state.live.subscribe(channel); // from now on, live; what came before is in the listing
    const frame = { type: "reports", status: "open", limit: 100 };
    if (spaceId !== null) frame.space = spaceId;
    const page = await state.live.request(frame);
    const ids = open.get(channel) || new Set();
    for (const r of page.reports) ids.add(r.id);
    open.set(channel, ids);
    more.set(channel, page.more);
    update();
  } catch {
    followed.delete(channel); // tried again with the next welcome
  }
}

// A queue event (routed here by the shell): the report opened or closed.
export function queueEvent(frame) {
  if (!followed.has(frame.channel) || !frame.report) return;
  const ids = open.get(frame.channel) || new Set();
  if (frame.report.status === "open") ids.add(frame.report.id);
  else ids.delete(frame.report.id);
  open.set(frame.channel, ids);
  update();
}

// The menu is drawn again, and with it the page's title (open reports count there too: unread.js).
function update() {
  changed();
}

// How many reports are open on a queue, as the menu shows it ("100+" past one page).
export function openCount(channel) {
  const n = open.get(channel)?.size || 0;
  return more.get(channel) && n >= 100 ? `${n}+` : n;
}

// Every open report the user may review, each once (a report is on its project's queue and on
// the platform's).
export function totalOpen() {
  const all = new Set();
  for (const ids of open.values()) for (const id of ids) all.add(id);
  return all.size;
}
