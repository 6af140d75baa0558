// My account (#/account): one's own password (adults; a pupil's teachers reset theirs), profile,
// data (the export, as a download), every session ended at once, and the account deleted
// (adults; a pupil's school erases theirs) — docs/protocol.md, "Your account", "Member profiles".

import { api, h, replace } from "../dom.js";
import { byName, errorText, formatDateTime, getLang, locale, t } from "../i18n.js";
import { state } from "../state.js";
import { confirmed, dialog, fail, toast } from "../ui.js";
import { loginRefusal } from "./join.js";

const MIN_PASSWORD = 10; // an adult's, as the server checks it (up to 200)
const MAX_LANGUAGES = 10;
const MAX_INTERESTS = 10;
// The languages offered as boxes to tick (eTwinning's countries), each said in the reader's
// language; a tag written before and not listed here is shown too.
const LANGUAGES = ["bg", "ca", "cs", "da", "de", "el", "en", "es", "et", "eu", "fi", "fr", "ga", "gl", "hr", "hu",
  "is", "it", "lt", "lv", "mk", "mt", "nl", "no", "pl", "pt", "ro", "sk", "sl", "sq", "sr", "sv", "tr", "uk"];

const isPupil = () => state.me.spaces.some((s) => s.role.startsWith("pupil_"));

// Every session of the account ends with a password change, this one too, and the answer is a
// new session (cookie): the socket is renewed with it — the old one's end (an `unauthenticated`
// error, then 4001) is not this page's session ending, unless the change failed.
async function keepingTheSession(request) {
  const live = state.live;
  const { onSessionEnded, onFrame } = live;
  let settle;
  const outcome = new Promise((resolve) => { settle = resolve; });
  live.onSessionEnded = () => outcome.then((ok) => { if (!ok) onSessionEnded(); });
  live.onFrame = (f) => { if (!(f.type === "error" && f.code === "unauthenticated" && !f.ref)) onFrame(f); };
  try {
    const answer = await request();
    live.renew();
    settle(true);
    return answer;
  } catch (err) {
    settle(false);
    throw err;
  } finally {
    live.onSessionEnded = onSessionEnded;
    live.onFrame = onFrame;
  }
}

// Deleting the account, or ending every session: this session ends too, and the page says why
// on the login page — not "your session has ended", as the closing socket would.
async function endingTheSession(request, showLogin, notice) {
  const live = state.live;
  const { onSessionEnded, onFrame } = live;
  live.onSessionEnded = () => {};
  live.onFrame = (f) => { if (!(f.type === "error" && f.code === "unauthenticated" && !f.ref)) onFrame(f); };
  try {
    await request();
  } catch (err) {
    live.onSessionEnded = onSessionEnded;
    live.onFrame = onFrame;
    if (live.stopped) onSessionEnded(); // the session ended meanwhile, for another reason
    throw err;
  }
  showLogin(notice);
}

function hinted(id, label, control, hint) {
  control.setAttribute("aria-describedby", `${id}-hint`);
  return h("div", { class: "field" }, h("label", { for: id }, label), control, h("p", { class: "hint", id: `${id}-hint` }, hint));
}

export function accountView({ showLogin }) {
  const view = { el: h("section", { class: "account", "data-testid": "account", "aria-labelledby": "account-title" }) };
  let profile = null; // as GET /api/profile answered
  let lastAdminOf = null; // names of the projects where one is the only teacher admin (null: not known yet)

  // -- password ------------------------------------------------------------------------------
  function passwordSection() {
    const section = h("section", { class: "account-part", "aria-labelledby": "account-password-title" },
      h("h2", { id: "account-password-title" }, t("account.password")));
    if (isPupil()) {
      section.append(h("p", { "data-testid": "account-pupil-password" }, t("account.password_pupil")));
      return section;
    }
    const current = h("input", { id: "account-current", type: "password", required: true, maxlength: 200, autocomplete: "current-password" });
    const next = h("input", { id: "account-new", type: "password", required: true, minlength: MIN_PASSWORD, maxlength: 200, autocomplete: "new-password" });
    const again = h("input", { id: "account-again", type: "password", required: true, maxlength: 200, autocomplete: "new-password" });
    const error = h("p", { class: "error", role: "alert", "data-testid": "account-password-error" });
    const check = () => {
      again.setCustomValidity(again.value === next.value ? "" : t("account.mismatch"));
      next.setCustomValidity(next.value && next.value === current.value ? t("account.same_password") : "");
    };
    for (const el of [current, next, again]) el.addEventListener("input", check);
    const form = h("form", { class: "account-form", "data-testid": "account-password-form" },
      h("div", { class: "field" }, h("label", { for: "account-current" }, t("account.current")), current),
      hinted("account-new", t("account.new"), next, t("account.password_rules", { n: MIN_PASSWORD })),
      h("div", { class: "field" }, h("label", { for: "account-again" }, t("account.again")), again),
      h("button", { type: "submit" }, t("account.change_password")),
      error);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      check();
      if (!form.reportValidity()) return;
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      error.textContent = "";
      try {
        await keepingTheSession(() => api("POST", "/api/account/password", { current_password: current.value, new_password: next.value }));
        form.reset();
        toast(t("account.password_changed"));
      } catch (err) {
        error.textContent = err.code === "forbidden" ? t("account.wrong_password")
          : err.code === "rate_limited" ? loginRefusal(err)
            : err.code === "invalid_field" ? t("account.password_rules", { n: MIN_PASSWORD })
              : err.code === "conflict" ? t("account.password_conflict") : errorText(err);
      } finally {
        button.disabled = false;
      }
    });
    section.append(form);
    return section;
  }

  // -- profile -------------------------------------------------------------------------------
  function profileSection() {
    const section = h("section", { class: "account-part", "aria-labelledby": "account-profile-title" },
      h("h2", { id: "account-profile-title" }, t("account.profile")),
      h("p", {}, t("account.profile_who")));
    if (!profile) {
      section.append(h("p", { class: "muted" }, t("account.loading")));
      return section;
    }
    const about = h("textarea", { id: "profile-about", name: "about", rows: 4, maxlength: 500 }, profile.about || "");
    let names;
    try {
      names = new Intl.DisplayNames([locale()], { type: "language" });
    } catch {
      names = { of: (tag) => tag };
    }
    const tags = [...new Set([...LANGUAGES, ...(profile.languages || [])])]
      .map((tag) => ({ tag, name: names.of(tag) || tag }))
      .sort((a, b) => byName(a.name, b.name));
    const boxes = tags.map(({ tag, name }) => h("label", { class: "choice", lang: tag },
      h("input", { type: "checkbox", name: "languages", value: tag, checked: (profile.languages || []).includes(tag) }), " ", name));
    const languages = h("fieldset", { class: "languages", "aria-describedby": "profile-languages-hint" },
      h("legend", {}, t("account.languages")),
      h("p", { class: "hint", id: "profile-languages-hint" }, t("account.languages_hint", { n: MAX_LANGUAGES })),
      h("div", { class: "language-boxes" }, boxes));
    const limitLanguages = () => {
      const ticked = languages.querySelectorAll("input:checked").length;
      for (const box of languages.querySelectorAll("input")) box.disabled = !box.checked && ticked >= MAX_LANGUAGES;
    };
    languages.addEventListener("change", limitLanguages);
    limitLanguages();
    const interests = h("input", { id: "profile-interests", name: "interests", value: (profile.interests || []).join(", "), maxlength: 500 });
    const error = h("p", { class: "error", role: "alert", "data-testid": "account-profile-error" });
    const form = h("form", { class: "account-form", "data-testid": "account-profile-form" },
      hinted("profile-about", t("account.about"), about, t("account.about_hint")),
      languages,
      hinted("profile-interests", t("account.interests"), interests, t("account.interests_hint", { n: MAX_INTERESTS })),
      h("button", { type: "submit" }, t("account.save_profile")),
      profile.updated_at ? h("p", { class: "muted" }, t("account.profile_saved_at", { when: formatDateTime(profile.updated_at) })) : null,
      error);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const list = interests.value.split(",").map((x) => x.trim()).filter(Boolean);
      if (list.length > MAX_INTERESTS) {
        error.textContent = t("account.interests_hint", { n: MAX_INTERESTS });
        interests.focus();
        return;
      }
      const body = {
        about: about.value,
        languages: [...languages.querySelectorAll("input:checked")].map((b) => b.value),
        interests: list,
      };
      error.textContent = "";
      try {
        profile = await api("PUT", "/api/profile", body);
        toast(t("account.profile_saved"));
        renderPart("profile");
      } catch (err) {
        error.textContent = err.code === "invalid_field" ? t("account.profile_invalid")
          : err.code === "too_large" ? t("account.profile_too_large") : errorText(err);
      }
    });
    section.append(form);
    return section;
  }

  // -- data ----------------------------------------------------------------------------------
  function dataSection() {
    const button = h("button", { type: "button", "data-testid": "account-export" }, t("account.export"));
    button.addEventListener("click", async () => {
      button.disabled = true;
      try {
        let response;
        try {
          response = await fetch("/api/account/export", { credentials: "same-origin" });
        } catch {
          throw { code: "network" };
        }
        if (!response.ok) throw (await response.json().catch(() => ({}))).error || { code: "internal" };
        const text = await response.text();
        try {
          JSON.parse(text); // a stream the server cut midway is no JSON: never handed over as a whole export
        } catch {
          throw { broken: true };
        }
        const name = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") || "")?.[1] || "twinhub-export.json";
        const url = URL.createObjectURL(new Blob([text], { type: "application/json" }));
        const link = h("a", { href: url, download: name, hidden: true });
        document.body.append(link);
        link.click();
        link.remove();
        setTimeout(() => URL.revokeObjectURL(url), 60_000);
        toast(t("account.export_done"));
      } catch (err) {
        if (err.broken) toast(t("account.export_broken"));
        else fail(err);
      } finally {
        button.disabled = false;
      }
    });
    return h("section", { class: "account-part", "aria-labelledby": "account-data-title" },
      h("h2", { id: "account-data-title" }, t("account.data")),
      h("p", {}, t("account.export_what")),
      button);
  }

  // -- sessions ------------------------------------------------------------------------------
  function sessionsSection() {
    const button = h("button", { type: "button", "data-testid": "account-logout-everywhere" }, t("account.logout_everywhere"));
    button.addEventListener("click", async () => {
      if (!(await confirmed(t("account.logout_everywhere"), t("account.logout_everywhere_confirm"), t("account.logout_everywhere"), { danger: false }))) return;
      try {
        await endingTheSession(() => api("POST", "/api/logout/everywhere"), showLogin, t("account.logged_out_everywhere"));
      } catch (err) {
        fail(err);
      }
    });
    return h("section", { class: "account-part", "aria-labelledby": "account-sessions-title" },
      h("h2", { id: "account-sessions-title" }, t("account.sessions")),
      h("p", {}, t("account.sessions_what")),
      button);
  }

  // -- deleting ------------------------------------------------------------------------------
  function deleteSection() {
    const section = h("section", { class: "account-part danger-zone", "aria-labelledby": "account-delete-title" },
      h("h2", { id: "account-delete-title" }, t("account.delete")));
    if (isPupil()) {
      section.append(h("p", { "data-testid": "account-pupil-delete" }, t("account.delete_pupil")));
      return section;
    }
    if (lastAdminOf === null) {
      section.append(h("p", { class: "muted" }, t("account.loading")));
      return section;
    }
    if (lastAdminOf.length) {
      section.append(h("p", { "data-testid": "account-last-admin" }, t("account.delete_last_admin", { projects: lastAdminOf.join(", ") })));
      return section;
    }
    const button = h("button", { type: "button", class: "danger", "data-testid": "account-delete" }, t("account.delete_button"));
    button.addEventListener("click", () => deleteAccount());
    section.append(h("p", {}, t("account.delete_what")), button);
    return section;
  }

  async function deleteAccount(problem = "") {
    const projects = state.me.spaces.map((s) => s.name).join(", ");
    const answer = await dialog({
      title: t("account.delete_title"),
      fields: [
        h("p", {}, t("account.delete_erased")),
        projects ? h("p", {}, t("account.delete_leaves", { projects })) : null,
        h("p", {}, t("account.delete_stays")),
        h("p", {}, t("account.delete_export_first")),
        h("div", { class: "field" },
          h("label", { for: "field-delete-password" }, t("account.delete_password")),
          h("input", { id: "field-delete-password", name: "password", type: "password", required: true, maxlength: 200, autocomplete: "current-password" })),
        problem ? h("p", { class: "error", role: "alert" }, problem) : null,
      ],
      confirm: t("account.delete_confirm"),
      danger: true,
      testid: "delete-dialog",
    });
    if (answer === null) return;
    try {
      await endingTheSession(() => api("POST", "/api/account/delete", { password: answer.password }), showLogin, t("account.deleted"));
    } catch (err) {
      const again = err.code === "forbidden" ? t("account.wrong_password")
        : err.code === "rate_limited" ? loginRefusal(err) : null;
      if (again) deleteAccount(again);
      else fail(err);
    }
  }

  // -- the screen ----------------------------------------------------------------------------
  const parts = {};
  const builders = { password: passwordSection, profile: profileSection, data: dataSection, sessions: sessionsSection, remove: deleteSection };

  function renderPart(name) {
    const fresh = builders[name]();
    parts[name]?.replaceWith(fresh);
    parts[name] = fresh;
  }

  function render() {
    for (const name of Object.keys(builders)) parts[name] = builders[name]();
    const user = state.me.user;
    replace(view.el,
      h("h1", { id: "account-title" }, t("account.title")),
      h("p", { class: "who-am-i" }, t("account.who", { name: user.name, username: user.username }),
        user.school ? ` — ${user.school}` : ""),
      Object.values(parts));
  }

  // The projects where one is the only teacher admin: the server refuses to delete the account
  // there ("name another teacher admin there first"), so the page says it before.
  async function findLastAdmin() {
    const mine = state.me.spaces.filter((s) => s.role === "teacher_admin");
    const alone = [];
    for (const space of mine) {
      const list = await api("GET", `/api/spaces/${space.id}/members`);
      const admins = list.members.filter((m) => m.role === "teacher_admin");
      if (admins.length === 1 && admins[0].id === state.me.user.id) alone.push(space.name);
    }
    return alone;
  }

  view.render = render;
  view.rightsChanged = () => renderPart("remove");
  view.start = async () => {
    try {
      profile = await api("GET", "/api/profile");
      renderPart("profile");
    } catch (err) {
      fail(err);
    }
    if (!isPupil()) {
      try {
        lastAdminOf = await findLastAdmin();
      } catch (err) {
        lastAdminOf = []; // the server refuses anyway, and says why
      }
      renderPart("remove");
    }
  };
  render();
  return view;
}
