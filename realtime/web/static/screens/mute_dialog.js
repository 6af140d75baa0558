// Muting a member of a project, one dialog for every screen that does it — the moderation screen
// (a report's author, the mutes panel) and a room (a message's author): how long (15 min, 1 h,
// 24 h, 7 days), where, and why. Over POST /api/spaces/{id}/mutes (docs/protocol.md, "Mutes");
// the server decides, the dialog offers only what makes sense.

import { api, h } from "../dom.js";
import { formatDateTime, t } from "../i18n.js";
import { currentSpace, state } from "../state.js";
import { dialog, fail, field, toast } from "../ui.js";

export const AREAS = ["home", "activities", "teachers_room", "pupils_corner", "chat"];
const LENGTHS = [15, 60, 1440, 10080]; // minutes: 15 min, 1 h, 24 h, 7 days

// Where a member writes, by the badge of their role — realtime/policy.py's MATRIX, the areas
// where the role posts or comments: a mute anywhere else would silence nothing. Teachers, platform
// moderators and bots are never muted (docs/roles.md).
const WRITES = {
  pupil: ["home", "activities", "pupils_corner", "chat"], // pupil_admin, pupil_member (home: journal comments)
  visitor: ["home", "activities"], // comments
};

export function mutable(badge) {
  return badge in WRITES;
}

export function scopeLabel(scope) {
  return AREAS.includes(scope) ? t(`area.${scope}`) : t(`mutes.scope.${scope}`);
}

function maxNote() {
  return state.me.limits?.max_note_chars || 500;
}

// The scopes the signed-in user may mute in, in that project: the areas they moderate there
// (platform moderators: every one), its mail and all of it (docs/roles.md).
function muteScopes(spaceId) {
  const space = currentSpace(spaceId);
  const areas = state.me.user.platform_role === "moderator" || !space ? AREAS
    : AREAS.filter((a) => space.rooms.some((r) => r.area === a && r.rights?.includes("moderate")));
  return [...areas, "mail", "all"];
}

// A member met in a room (their badge known): the areas where they write and the viewer may
// mute, and the whole project.
export function memberScopes(spaceId, badge) {
  const writes = WRITES[badge] || [];
  return [...muteScopes(spaceId).filter((s) => writes.includes(s)), "all"];
}

function selectField(label, name, options, selected) {
  const id = `field-${name}`;
  return h("div", { class: "field" }, h("label", { for: id }, label),
    h("select", { id, name }, options.map(([value, text]) => h("option", { value, selected: String(value) === String(selected) }, text))));
}

// Mute someone in a project: `user` ({id, name}) is who; or `people`, the members to choose
// from. `scope`: the one chosen at first; `scopes`: the choices (default: every scope the viewer
// mutes in). Answers the mute (or null: cancelled or refused, said in a toast).
export async function muteDialog(spaceId, { user = null, people = null, scope = "all", scopes = null } = {}) {
  const fields = [];
  if (people) {
    fields.push(selectField(t("mutes.who"), "user", people.map((p) => [p.id, `${p.name} — ${t(`mutes.role.${p.role}`)}${p.school ? `, ${p.school}` : ""}`])));
  } else {
    fields.push(h("p", { class: "hint" }, t("mutes.muting", { name: user.name || t("author.pupil") })));
  }
  const choices = scopes || muteScopes(spaceId);
  fields.push(
    selectField(t("mutes.length"), "minutes", LENGTHS.map((m) => [m, t(`mutes.length.${m}`)]), 60),
    selectField(t("mutes.scope"), "scope", choices.map((s) => [s, scopeLabel(s)]), choices.includes(scope) ? scope : "all"),
    field(t("mutes.reason"), "reason", { multiline: true, maxlength: maxNote() }));
  const answer = await dialog({ title: t("mutes.title"), fields, confirm: t("mutes.confirm"), testid: "mute-dialog" });
  if (answer === null) return null;
  const who = people ? people.find((p) => String(p.id) === answer.user) : user;
  try {
    const ok = await api("POST", `/api/spaces/${spaceId}/mutes`, {
      user_id: Number(who.id), scope: answer.scope, minutes: Number(answer.minutes), reason: answer.reason,
    });
    toast(t("mutes.done", { name: who.name || t("author.pupil"), until: formatDateTime(ok.until) }));
    return ok;
  } catch (err) {
    fail(err);
    return null;
  }
}
