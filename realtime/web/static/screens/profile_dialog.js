// A member's profile (about, languages, interests), as the server lets the viewer see it
// (docs/protocol.md, "Member profiles"): opened from a name in a room's "Here now" list. A
// profile one may not read is said in words (by its code), never guessed at.

import { api, h } from "../dom.js";
import { formatDateTime, locale, t } from "../i18n.js";
import { dialog, fail } from "../ui.js";

function languageName(tag) {
  try {
    return new Intl.DisplayNames([locale()], { type: "language" }).of(tag) || tag;
  } catch {
    return tag;
  }
}

export async function showProfile(spaceId, userId) {
  let profile;
  try {
    profile = await api("GET", `/api/spaces/${spaceId}/members/${userId}/profile`);
  } catch (err) {
    fail(err);
    return;
  }
  const user = profile.user || {};
  const empty = !profile.about && !profile.languages?.length && !profile.interests?.length;
  await dialog({
    title: user.name || t("author.pupil"),
    testid: "profile-dialog",
    confirm: t("dialog.close"),
    cancel: false, // only something to read: one button closes it
    fields: [
      h("p", { class: "hint" }, [user.role ? t(`badge.${user.role}`) : null, user.school].filter(Boolean).join(" · ")),
      empty ? h("p", { "data-testid": "profile-empty" }, t("profile.empty")) : null,
      profile.about ? h("p", { class: "about", "data-testid": "profile-about" }, profile.about) : null,
      profile.languages?.length ? h("p", {}, h("strong", {}, t("profile.languages")), " ", profile.languages.map(languageName).join(", ")) : null,
      profile.interests?.length ? h("p", {}, h("strong", {}, t("profile.interests")), " ", profile.interests.join(", ")) : null,
      profile.updated_at ? h("p", { class: "hint" }, t("profile.updated", { date: formatDateTime(profile.updated_at) })) : null,
    ],
  });
}
