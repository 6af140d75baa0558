// /join: someone given an invitation code (a parent, a head teacher, a partner teacher) joins a
// project with it — making their account in the same step, or with the account they have — then
// lands logged in on the home screen. /join?code=… (a printed card's QR code) fills the code in,
// and the code leaves the address at once: it is a secret, never kept in the URL or localStorage.
// Also here: what the login page says when a login is refused (wrong password, slowed, locked).

import { api, h, replace } from "../dom.js";
import { errorText, formatDuration, formatTime, t } from "../i18n.js";
import { toast } from "../ui.js";

const USERNAME = "[a-z0-9][a-z0-9._\\-]{2,63}"; // docs/protocol.md, "Redeeming a code"
const ADULT_PASSWORD = 10; // characters at least: accounts made with a code are adults'

// A refused login in the reader's language. A lockout says how long to wait, and what a pupil can
// do; it is worded from the code and the wait alone, as the server answers an unknown username
// exactly as a real one — so it never says whether the username exists.
export function loginRefusal(err) {
  if (err.code === "unauthenticated") return t("login.failed");
  if (err.code === "rate_limited") {
    // The end of the wait is kept on the error: said again in another language, it has not moved.
    err.until ??= Date.now() + (Number(err.retry_after_ms) || 1000);
    const left = Math.max(err.until - Date.now(), 1000);
    if (left < 60_000) return t("login.slow_down", { wait: formatDuration(left) });
    return t("login.locked", { wait: formatDuration(left), until: formatTime(new Date(err.until).toISOString()) });
  }
  return errorText(err);
}

// What a refused redemption means, in words for someone who has never used TwinHub.
function joinRefusal(err, signedIn) {
  switch (err.code) {
    case "not_found": return t("join.code_unknown");
    case "conflict": return signedIn ? t("join.already_member") : t("join.taken");
    case "invalid_field": return t("join.invalid");
    case "forbidden": return t("join.forbidden");
    case "rate_limited": {
      err.until ??= Date.now() + (Number(err.retry_after_ms) || 1000);
      return t("join.rate_limited", { wait: formatDuration(Math.max(err.until - Date.now(), 1000)) });
    }
    default: return errorText(err);
  }
}

// A labelled input with a hint under it (the rules the server applies, said before they bite).
function input(id, label, attrs = {}, hint = null) {
  const hintId = hint ? `${id}-hint` : null;
  return h("div", { class: "field" },
    h("label", { for: id }, label),
    h("input", { id, name: id, "aria-describedby": hintId, ...attrs }),
    hint ? h("p", { class: "hint", id: hintId }, hint) : null);
}

// The page at /join. `start(me)` opens the app once the newcomer is signed in;
// `languageMenu(rerender)` is the language choice every page before the app has.
export async function joinPage({ root, start, languageMenu }) {
  const params = new URLSearchParams(location.search);
  let code = params.get("code") || "";
  if (params.has("code")) history.replaceState(null, "", "/join"); // out of the address (and history)
  let me = null;
  try {
    me = await api("GET", "/api/me");
  } catch {
    me = null; // not signed in (or a stale cookie): a new account, or log in first
  }
  let mode = "new"; // or "existing": log in with the account one has, then join
  let refusal = null; // the last refusal, said again when the language changes

  async function landHome(message) {
    history.replaceState(null, "", "/#/home");
    await start(await api("GET", "/api/me"));
    window.scrollTo(0, 0); // the form was long: Start from its top
    if (message) toast(message);
  }

  function render() {
    const error = h("p", { class: "error", role: "alert", id: "join-error", "data-testid": "join-error" },
      refusal ? refusal() : "");
    const codeField = input("join-code", t("join.code"), {
      value: code, required: true, minlength: 8, maxlength: 100, autocomplete: "off", spellcheck: "false",
      autocapitalize: "off", oninput: (ev) => { code = ev.target.value; },
    }, t("join.code_hint"));

    let body;
    if (me) {
      body = [
        h("p", {}, t("join.signed_in", { name: me.user.name, username: me.user.username })),
        codeField,
        h("button", { type: "submit", "data-testid": "join-submit" }, t("join.submit_signed_in")),
        h("p", {}, h("button", { type: "button", class: "link", onclick: signOut }, t("join.not_you"))),
      ];
    } else {
      // Both sets of fields are there; the one not chosen is hidden and disabled (not checked,
      // not sent). Choosing does not redraw the form: the focus stays on the choice.
      const choice = (value, label) => h("label", { class: "choice" },
        h("input", { type: "radio", name: "join-mode", value, checked: mode === value,
          onchange: () => { mode = value; showMode(form); } }), " ", label);
      const fresh = h("div", { class: "join-fields", "data-mode": "new" },
        input("join-name", t("join.name"), { required: true, maxlength: 100, autocomplete: "name" }, t("join.name_hint")),
        input("join-username", t("join.username"), {
          required: true, minlength: 3, maxlength: 64, pattern: USERNAME, autocomplete: "username",
          autocapitalize: "off", spellcheck: "false",
        }, t("join.username_hint")),
        input("join-school", t("join.school"), { maxlength: 200, autocomplete: "organization" }, t("join.school_hint")),
        input("join-password", t("join.password"), {
          type: "password", required: true, minlength: ADULT_PASSWORD, maxlength: 200, autocomplete: "new-password",
        }, t("join.password_hint", { n: ADULT_PASSWORD })),
        input("join-repeat", t("join.repeat"), {
          type: "password", required: true, maxlength: 200, autocomplete: "new-password",
        }));
      const existing = h("div", { class: "join-fields", "data-mode": "existing" },
        input("join-login-username", t("login.username"), { required: true, maxlength: 64, autocomplete: "username", autocapitalize: "off" }),
        input("join-login-password", t("login.password"), { type: "password", required: true, maxlength: 200, autocomplete: "current-password" }));
      body = [
        codeField,
        h("fieldset", { class: "choices" }, h("legend", {}, t("join.have_account")),
          choice("new", t("join.mode_new")), choice("existing", t("join.mode_existing"))),
        fresh,
        existing,
        h("button", { type: "submit", "data-testid": "join-submit" }),
      ];
    }
    const form = h("form", { class: "join", "aria-labelledby": "join-title", "data-testid": "join" },
      languageMenu(render), // first: a parent whose browser speaks another language finds it at once
      h("h1", { id: "join-title" }, t("join.title")),
      h("p", {}, t("join.intro")),
      body,
      error, // right under the button, where the eye is (not below the fold on a phone)
      me ? null : h("p", {}, t("join.no_code")));
    // A username is written in small letters (the server's rule): typed capitals are lowered, and
    // a refusal of the pattern is said in the page's words, not the browser's.
    const username = form.querySelector("#join-username");
    if (username) {
      username.addEventListener("input", () => {
        const lower = username.value.toLowerCase();
        if (lower !== username.value) username.value = lower;
        username.setCustomValidity("");
      });
      username.addEventListener("invalid", () => {
        if (username.validity.patternMismatch) username.setCustomValidity(t("join.username_hint"));
      });
    }
    const repeat = form.querySelector("#join-repeat");
    if (repeat) {
      const check = () => repeat.setCustomValidity(
        repeat.value === form.querySelector("#join-password").value ? "" : t("join.mismatch"));
      repeat.addEventListener("input", check);
      form.querySelector("#join-password").addEventListener("input", check);
    }
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      submit(form, error);
    });
    showMode(form);
    replace(root, h("main", { class: "login-page join-page" }, form));
    (code ? form.querySelector(".join-fields:not([hidden]) input, [data-testid=join-submit]") : form.querySelector("#join-code"))?.focus();
  }

  function showMode(form) {
    for (const group of form.querySelectorAll(".join-fields")) {
      group.hidden = group.dataset.mode !== mode;
      for (const el of group.querySelectorAll("input")) el.disabled = group.hidden;
    }
    const button = form.querySelector("[data-testid=join-submit]");
    if (!me) button.textContent = mode === "new" ? t("join.submit_new") : t("join.submit_existing");
  }

  async function submit(form, error) {
    const value = (id) => form.querySelector(`#${id}`)?.value ?? "";
    const button = form.querySelector("[data-testid=join-submit]");
    const wasSignedIn = Boolean(me);
    button.disabled = true;
    try {
      if (mode === "existing" && !me) {
        await api("POST", "/api/login", { username: value("join-login-username").trim(), password: value("join-login-password") })
          .catch((err) => { throw { ...err, login: true }; });
        me = await api("GET", "/api/me");
      }
      let done;
      if (me) {
        done = await api("POST", "/api/invitations/redeem", { code: code.trim() });
      } else {
        const username = value("join-username").trim();
        const password = value("join-password");
        const body = { code: code.trim(), username, name: value("join-name").trim(), password };
        const school = value("join-school").trim();
        if (school) body.school = school;
        done = await api("POST", "/api/invitations/redeem", body);
        code = "";
        try {
          await api("POST", "/api/login", { username, password });
        } catch {
          location.assign("/"); // the account is made: the login page, should this login fail
          return;
        }
      }
      code = "";
      refusal = null;
      await landHome(t("join.welcome", { project: done.invitation.space.name }));
    } catch (err) {
      refusal = err.login ? () => loginRefusal(err) : () => joinRefusal(err, Boolean(me));
      if (me && !wasSignedIn) render(); // signed in now, whatever the code said: the page says so
      else error.textContent = refusal();
    } finally {
      button.disabled = false;
    }
    if (refusal && button.isConnected) button.focus(); // the focus back where it was, the words under it
  }

  async function signOut() {
    await api("POST", "/api/logout").catch(() => {});
    me = null;
    refusal = null;
    render();
  }

  render();
}
