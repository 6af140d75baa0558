// The teachers' console for the people of a project: the members (role, school, who invited
// whom, login lockouts) with what the viewer may do to each — a role change, a removal, a new
// password, lifting a login lock — as the server says it (`may` on the member list); the pupils
// this project made who left, to add back; invitations (by username, or a one-time code on a
// printable card with a QR code of the address); pupils' accounts made in bulk from a pasted list
// or a file, duplicates shown before anything is sent. Teacher admins get all of it; teacher
// members the list, pupils' accounts and former pupils (they invite pupils, not adults), and
// the actions the server allows them on the pupils they invited. Passwords and codes are shown
// once, on a one-time sheet of cut-out cards that prints alone (style.css, "@media print");
// leaving the sheet asks first, since they cannot be shown again. Everything goes through
// docs/protocol.md ("Pupil accounts" to "A removed pupil added back").

import { api, h, replace } from "../dom.js";
import { byName, direction, errorText, formatDateIn, formatDateTime, formatShortDate, languageNames, t, wordsIn } from "../i18n.js";
import { currentSpace, hasMembersScreen, state } from "../state.js";
import { confirmed, dialog, fail, field, toast } from "../ui.js";

const PUPIL_ROLES = ["pupil_member", "pupil_admin"];
const ADULT_ROLES = ["teacher_admin", "teacher_member", "visitor"];
const INVITED_ROLES = ["teacher_member", "teacher_admin", "visitor"];
const MAX_PUPILS = 100; // docs/protocol.md, "Pupil accounts": 1-100 names at once
const MAX_NAME = 100;

const isPupil = (role) => PUPIL_ROLES.includes(role);

// A name as duplicates are told apart: the same letters whatever the case, the spacing or the
// width (NFKC), so "ana  l." and "Ana L." are one name.
export function nameKey(name) {
  return name.normalize("NFKC").toLocaleLowerCase().replace(/\s+/g, " ").trim();
}

// The names in a pasted list or a file: one per line; in a .csv, the first cell of each line
// (comma or semicolon, quotes allowed), a header line ("name", "nom") left out.
export function namesFrom(text, { csv = false } = {}) {
  const lines = text.replace(/^\uFEFF/, "").split(/\r\n|\n|\r/);
  const names = lines.map((line) => (csv ? firstCell(line) : line).replace(/\s+/g, " ").trim()).filter(Boolean);
  if (csv && names.length && /^(names?|noms?|pr[ée]noms?|first ?names?|full ?names?)$/i.test(names[0])) names.shift();
  return names;
}

function firstCell(line) {
  const quoted = line.match(/^\s*"((?:[^"]|"")*)"/);
  if (quoted) return quoted[1].replace(/""/g, '"');
  return line.split(/[,;\t]/)[0];
}

// Each name of the list with what is wrong with it, if anything: said twice in the list, the
// name of a member already, the name of a former pupil (who could be added back), too long.
export function checkNames(names, members, former) {
  const memberKeys = new Set(members.map((m) => nameKey(m.name)));
  const formerKeys = new Set(former.map((p) => nameKey(p.name)));
  const seen = new Set();
  return names.map((name) => {
    const key = nameKey(name);
    let problem = null;
    if (name.length > MAX_NAME) problem = "too_long";
    else if (seen.has(key)) problem = "twice";
    else if (memberKeys.has(key)) problem = "member";
    else if (formerKeys.has(key)) problem = "former";
    seen.add(key);
    return { name, problem };
  });
}

// The QR code library (static/vendor/qrcode-generator, MIT) is loaded when a card first needs
// it, not with the page: most people never make an invitation code.
let qrcode = null;
async function loadQr() {
  try {
    qrcode ??= (await import("../vendor/qrcode-generator/qrcode.js")).default;
  } catch {
    // no QR code then: the card still has the address written out
  }
}

// The QR code of a text, drawn as SVG elements (the CSP allows no markup strings, and needs none).
function qrSvg(text, label) {
  if (!qrcode) return null;
  const qr = qrcode(0, "M");
  qr.addData(text);
  qr.make();
  const n = qr.getModuleCount();
  const margin = 2;
  let d = "";
  for (let r = 0; r < n; r += 1) {
    for (let c = 0; c < n; c += 1) if (qr.isDark(r, c)) d += `M${c + margin} ${r + margin}h1v1h-1z`;
  }
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  const size = n + 2 * margin;
  for (const [k, v] of Object.entries({ viewBox: `0 0 ${size} ${size}`, role: "img", "aria-label": label, "shape-rendering": "crispEdges", class: "qr" })) {
    svg.setAttribute(k, v);
  }
  const back = document.createElementNS(ns, "rect");
  for (const [k, v] of Object.entries({ width: size, height: size, fill: "#fff" })) back.setAttribute(k, v);
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000");
  svg.append(back, path);
  return svg;
}

function loginAddress() {
  return `${location.origin}/`;
}

// Where an invitation code is entered (the /join page). The code itself never goes into the
// address or the QR code: a printed card may be photographed, an address ends up in logs.
function joinAddress() {
  return `${location.origin}/join`;
}

export function membersView(space) {
  const live = state.live;
  const view = { el: h("section", { class: "members-view", "data-testid": "members" }) };
  // A teacher admin invites adults and sees the invitations; a teacher member makes pupils'
  // accounts only (the server refuses them the rest anyway).
  let role = currentSpace(space.id)?.role;
  const admin = () => role === "teacher_admin";
  let members = [];
  let former = [];
  let pending = [];
  let loaded = false;
  let checked = null; // the last checked list of names: [{name, problem}]
  let sheet = null; // the one-time sheet shown: {kind: "pupils"|"reset"|"code", lang, w (its words), ...}
  const projectLanguage = () => currentSpace(space.id)?.language || space.language || "en";
  const drafts = { names: "", school: "" }; // what was typed in the pupils' form, kept across renders

  // -- loading ------------------------------------------------------------------------------

  async function refresh() {
    try {
      const [m, f, i] = await Promise.all([
        api("GET", `/api/spaces/${space.id}/members`),
        api("GET", `/api/spaces/${space.id}/members/former`),
        admin() ? api("GET", `/api/spaces/${space.id}/invitations?status=pending`) : { invitations: [] },
      ]);
      members = m.members.sort((a, b) => byName(a.name, b.name));
      former = f.pupils;
      pending = i.invitations;
    } catch (err) {
      fail(err);
      return;
    }
    if (!loaded) {
      loaded = true;
      if (!sheet) view.render();
    } else if (!sheet) {
      renderLists();
    }
  }

  // -- the member list ----------------------------------------------------------------------

  function roleBadge(role) {
    return h("span", { class: `badge members-role members-role-${role}${isPupil(role) ? "" : " badge-teacher"}` }, t(`members.role.${role}`));
  }

  const lockedNow = (m) => Boolean(m.locked_until && Date.parse(m.locked_until) > Date.now());
  const may = (m, action) => (m.may || []).includes(action); // what the server lets this viewer do

  function lockLine(m) {
    if (!m.locked_at) return null;
    if (lockedNow(m)) {
      return h("p", { class: "members-locked", "data-testid": "locked" },
        h("strong", {}, t("members.locked_until", { until: formatDateTime(m.locked_until) })), " ",
        t(may(m, "unlock") ? "members.locked_why_unlock" : "members.locked_why"));
    }
    return h("p", { class: "members-lockouts" }, t("members.lockouts", { n: m.lockouts, last: formatDateTime(m.locked_at) }));
  }

  function memberItem(m) {
    const me = m.id === state.me.user.id;
    const inviter = m.invited_by ? members.find((x) => x.id === m.invited_by) : null;
    const invited = m.invited_by === null ? t("members.invited_by_nobody")
      : inviter ? t("members.invited_by", { name: inviter.name }) : t("members.invited_by_gone");
    const actions = me ? [h("span", { class: "members-you" }, t("members.you"))] : [
      lockedNow(m) && may(m, "unlock") ? h("button", { type: "button", "data-action": "unlock", onclick: () => unlock(m) }, t("members.action.unlock")) : null,
      may(m, "set_role") ? h("button", { type: "button", "data-action": "role", onclick: () => changeRole(m) }, t("members.action.role")) : null,
      may(m, "reset_password") ? h("button", { type: "button", "data-action": "reset", onclick: () => resetPassword(m) }, t("members.action.reset")) : null,
      may(m, "remove") ? h("button", { type: "button", class: "danger", "data-action": "remove", onclick: () => remove(m) }, t("members.action.remove")) : null,
    ];
    return h("li", { class: "member", "data-user": m.id, "data-role": m.role },
      h("div", { class: "member-who" },
        h("h3", {}, m.name, " ", roleBadge(m.role)),
        h("p", { class: "member-details" },
          m.school ? h("span", {}, m.school) : null,
          h("span", {}, t("members.username", { username: m.username })),
          h("span", {}, invited),
          m.joined_at ? h("span", {}, t("members.joined", { date: formatShortDate(m.joined_at) })) : null),
        lockLine(m)),
      h("div", { class: "member-actions", role: "group", "aria-label": t("members.actions_for", { name: m.name }) }, actions));
  }

  function memberSection() {
    return [
      h("h2", { id: "members-list-title" }, t("members.list.title", { n: members.length })),
      h("p", { class: "members-note" }, t("members.list.note")),
      admin() ? null : h("p", { class: "members-note", "data-testid": "teacher-member-note" }, t("members.list.teacher_member")),
      h("ul", { class: "member-list", "data-testid": "member-list" }, members.map(memberItem))];
  }

  function roleSelect(name, roles, selected, label) {
    const id = `field-${name}`;
    return h("div", { class: "field" }, h("label", { for: id }, label),
      h("select", { id, name }, roles.map((r) => h("option", { value: r, selected: r === selected }, t(`members.role.${r}`)))));
  }

  async function changeRole(m) {
    const roles = isPupil(m.role) ? PUPIL_ROLES : ADULT_ROLES;
    const answer = await dialog({
      title: t("members.role_dialog.title", { name: m.name }),
      fields: [
        roleSelect("role", roles, m.role, t("members.role_dialog.label")),
        h("p", { class: "members-note" }, t(isPupil(m.role) ? "members.role_dialog.pupil" : "members.role_dialog.adult")),
      ],
      confirm: t("members.role_dialog.confirm"), testid: "role-dialog",
    });
    if (!answer || answer.role === m.role) return;
    try {
      await live.request({ type: "set_role", space: space.id, user_id: m.id, role: answer.role });
      toast(t("members.done.role", { name: m.name, role: t(`members.role.${answer.role}`) }));
      refresh();
    } catch (err) {
      fail(err);
    }
  }

  async function remove(m) {
    const text = isPupil(m.role) ? t("members.remove.pupil", { name: m.name }) : t("members.remove.adult", { name: m.name });
    if (!(await confirmed(t("members.remove.title", { name: m.name }), text, t("members.action.remove")))) return;
    try {
      await live.request({ type: "remove_member", space: space.id, user_id: m.id });
      toast(t("members.done.removed", { name: m.name }));
      refresh();
    } catch (err) {
      fail(err);
    }
  }

  async function unlock(m) {
    const text = t("members.unlock.text", { name: m.name, until: formatDateTime(m.locked_until) });
    if (!(await confirmed(t("members.unlock.title", { name: m.name }), text, t("members.action.unlock"), { danger: false }))) return;
    try {
      await api("POST", `/api/spaces/${space.id}/members/${m.id}/unlock`);
      toast(t("members.done.unlocked", { name: m.name }));
      refresh();
    } catch (err) {
      fail(err);
    }
  }

  async function resetPassword(m) {
    const answer = await dialog({
      title: t("members.reset.title", { name: m.name }),
      fields: [
        h("p", {}, t("members.reset.text", { name: m.name })),
        lockedNow(m) ? h("p", { class: "members-locked" }, t("members.reset.locked", { until: formatDateTime(m.locked_until) })) : null,
        field(t("members.reset.own"), "password", { minlength: 5, maxlength: 8, pattern: "\\S{5,8}", autocomplete: "off", spellcheck: "false" }),
      ],
      confirm: t("members.reset.confirm"), danger: true, testid: "reset-dialog",
    });
    if (!answer) return;
    const body = answer.password ? { password: answer.password } : {};
    try {
      const done = await api("POST", `/api/spaces/${space.id}/members/${m.id}/password`, body);
      showSheet({ kind: "reset", logins: [{ name: m.name, username: m.username, password: done.password }] });
    } catch (err) {
      fail(err);
    }
  }

  // -- former pupils --------------------------------------------------------------------------

  function formerSection() {
    return [
      h("h2", { id: "members-former-title" }, t("members.former.title")),
      h("p", { class: "members-note" }, t("members.former.note")),
      former.length ? h("ul", { class: "member-list", "data-testid": "former" }, former.map((p) => h("li", { class: "member", "data-user": p.id },
        h("div", { class: "member-who" },
          h("h3", {}, p.name),
          h("p", { class: "member-details" },
            p.school ? h("span", {}, p.school) : null,
            h("span", {}, t("members.username", { username: p.username })),
            p.removed_at ? h("span", {}, t("members.former.since", { date: formatShortDate(p.removed_at) })) : null)),
        h("div", { class: "member-actions" },
          h("button", { type: "button", "data-action": "add-back", onclick: () => addBack(p) }, t("members.former.add_back"))))))
        : h("p", { "data-testid": "former" }, t("members.former.none"))];
  }

  async function addBack(p) {
    // A teacher member adds a pupil back as a pupil member (docs/protocol.md, "A removed pupil added back").
    const answer = await dialog({
      title: t("members.former.dialog", { name: p.name }),
      fields: [
        admin() ? roleSelect("role", PUPIL_ROLES, "pupil_member", t("members.role_dialog.label")) : null,
        h("p", { class: "members-note" }, t("members.former.keeps")),
      ],
      confirm: t("members.former.add_back"), testid: "add-back-dialog",
    });
    if (!answer) return;
    try {
      await api("POST", `/api/spaces/${space.id}/members`, { user_id: p.id, role: answer.role || "pupil_member" });
      toast(t("members.done.added_back", { name: p.name }));
      refresh();
    } catch (err) {
      fail(err);
    }
  }

  // -- invitations ----------------------------------------------------------------------------

  function inviteSection() {
    const byName = h("form", { class: "members-form", "data-testid": "invite-username", "aria-labelledby": "members-invite-user" },
      h("h3", { id: "members-invite-user" }, t("members.invite.by_username")),
      h("p", { class: "members-note" }, t("members.invite.by_username_note")),
      field(t("members.invite.username"), "invite-username", { required: true, maxlength: 64, autocomplete: "off", spellcheck: "false" }),
      roleSelect("invite-role", INVITED_ROLES, "teacher_member", t("members.invite.role")),
      field(t("members.invite.note"), "invite-note", { maxlength: 500 }),
      h("button", { type: "submit" }, t("members.invite.send")));
    byName.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const values = Object.fromEntries(new FormData(byName).entries());
      const body = { username: values["invite-username"].trim(), role: values["invite-role"] };
      if (values["invite-note"].trim()) body.note = values["invite-note"].trim();
      try {
        await api("POST", `/api/spaces/${space.id}/invitations`, body);
        toast(t("members.done.invited", { username: body.username }));
        byName.reset();
        refresh();
      } catch (err) {
        toast(err.code === "not_found" ? t("members.invite.unknown", { username: body.username })
          : err.code === "conflict" ? t("members.invite.conflict", { username: body.username }) : errorText(err));
      }
    });

    const byCode = h("form", { class: "members-form", "data-testid": "invite-code", "aria-labelledby": "members-invite-code" },
      h("h3", { id: "members-invite-code" }, t("members.invite.by_code")),
      h("p", { class: "members-note" }, t("members.invite.by_code_note")),
      roleSelect("code-role", INVITED_ROLES, "visitor", t("members.invite.role")),
      field(t("members.invite.label"), "code-label", { maxlength: 200, placeholder: t("members.invite.label_example") }),
      field(t("members.invite.note"), "code-note", { maxlength: 500 }),
      h("button", { type: "submit" }, t("members.invite.make_code")));
    byCode.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const values = Object.fromEntries(new FormData(byCode).entries());
      const body = { role: values["code-role"] };
      if (values["code-label"].trim()) body.label = values["code-label"].trim();
      if (values["code-note"].trim()) body.note = values["code-note"].trim();
      try {
        const made = await api("POST", `/api/spaces/${space.id}/invitations`, body);
        await loadQr();
        byCode.reset();
        showSheet({ kind: "code", invitation: made.invitation, code: made.code });
        refresh(); // the pending list, for when the card is left
      } catch (err) {
        fail(err);
      }
    });
    return h("section", { "aria-labelledby": "members-invite-title" },
      h("h2", { id: "members-invite-title" }, t("members.invite.title")),
      h("div", { class: "members-forms" }, byName, byCode));
  }

  function pendingSection() {
    const item = (inv) => h("li", { class: "member", "data-invitation": inv.id },
      h("div", { class: "member-who" },
        h("h3", {}, inv.invitee ? inv.invitee.username : inv.label ? t("members.pending.code_for", { label: inv.label }) : t("members.pending.code"),
          " ", roleBadge(inv.role)),
        h("p", { class: "member-details" },
          h("span", {}, t(inv.invitee ? "members.pending.by_username" : "members.pending.by_code")),
          h("span", {}, t("members.invited_by", { name: inv.invited_by?.name || "" })),
          h("span", {}, t("members.pending.expires", { date: formatShortDate(inv.expires_at) })),
          inv.note ? h("span", {}, t("members.pending.note", { note: inv.note })) : null)),
      h("div", { class: "member-actions" },
        h("button", { type: "button", class: "danger", "data-action": "revoke", onclick: () => revoke(inv) }, t("members.pending.revoke"))));
    return [
      h("h2", { id: "members-pending-title" }, t("members.pending.title")),
      pending.length ? h("ul", { class: "member-list", "data-testid": "pending" }, pending.map(item))
        : h("p", { "data-testid": "pending" }, t("members.pending.none"))];
  }

  async function revoke(inv) {
    const who = inv.invitee ? inv.invitee.username : inv.label || t("members.pending.code");
    if (!(await confirmed(t("members.pending.revoke"), t("members.pending.revoke_text", { who }), t("members.pending.revoke")))) return;
    try {
      await api("DELETE", `/api/spaces/${space.id}/invitations/${inv.id}`);
      toast(t("members.done.revoked", { who }));
      refresh();
    } catch (err) {
      fail(err);
    }
  }

  // -- pupils' accounts in bulk -------------------------------------------------------------

  function pupilsSection() {
    const names = h("textarea", { id: "pupil-names", rows: 6, spellcheck: "false", "aria-describedby": "pupil-names-help" }, drafts.names);
    const file = h("input", { id: "pupil-file", type: "file", accept: ".txt,.csv,text/plain,text/csv" });
    const school = h("input", { id: "pupil-school", maxlength: 200, value: drafts.school, placeholder: state.me.user.school || "" });
    // The class's language: their accounts start in it and their sheet is printed in it.
    const language = h("select", { id: "pupil-language", onchange: () => { drafts.language = language.value; } },
      Object.entries(languageNames()).map(([tag, name]) => h("option", { value: tag, lang: tag, selected: tag === (drafts.language || projectLanguage()) }, name)));
    const preview = h("div", { class: "pupils-preview", "aria-live": "polite", "data-testid": "pupils-preview" });
    names.addEventListener("input", () => {
      drafts.names = names.value;
      if (checked) {
        checked = null;
        replace(preview);
      }
    });
    school.addEventListener("input", () => { drafts.school = school.value; });
    file.addEventListener("change", () => {
      const chosen = file.files[0];
      if (!chosen) return;
      const reader = new FileReader();
      reader.onload = () => {
        const found = namesFrom(String(reader.result), { csv: /\.csv$/i.test(chosen.name) || chosen.type === "text/csv" });
        names.value = drafts.names = found.join("\n");
        check();
      };
      reader.onerror = () => toast(t("members.pupils.unreadable", { file: chosen.name }));
      reader.readAsText(chosen, "utf-8");
    });

    function check() {
      checked = checkNames(namesFrom(names.value), members, former);
      renderPreview();
    }

    function renderPreview() {
      if (!checked) return replace(preview);
      if (!checked.length) return replace(preview, h("p", { class: "error" }, t("members.pupils.empty")));
      const flagged = checked.filter((x) => x.problem).length;
      const rows = checked.map((x, i) => {
        const id = `pupil-${i}`;
        return h("li", { class: x.problem ? "flagged" : "", "data-problem": x.problem || "" },
          h("input", { type: "checkbox", id, checked: !x.problem, disabled: x.problem === "too_long", "data-name": x.name }),
          h("label", { for: id }, x.name),
          x.problem ? h("span", { class: "members-problem" }, t(`members.pupils.problem.${x.problem}`)) : null);
      });
      const create = h("button", { type: "button", "data-action": "create-pupils", onclick: () => createPupils(create) }, t("members.pupils.create"));
      replace(preview,
        h("p", {}, flagged ? t("members.pupils.flagged", { n: checked.length, flagged }) : t("members.pupils.clean", { n: checked.length })),
        h("fieldset", {}, h("legend", {}, t("members.pupils.legend")), h("ul", { class: "pupils-checked" }, rows)),
        create);
    }

    async function createPupils(button) {
      const chosen = [...preview.querySelectorAll("input[type=checkbox]:checked")].map((b) => b.dataset.name);
      if (!chosen.length) return toast(t("members.pupils.none_chosen"));
      if (chosen.length > MAX_PUPILS) return toast(t("members.pupils.too_many", { max: MAX_PUPILS }));
      const body = { pupils: chosen, language: language.value };
      if (school.value.trim()) body.school = school.value.trim();
      // A class takes a few seconds (each password is hashed): one click, and it says so.
      button.disabled = true;
      button.textContent = t("members.pupils.making", { n: chosen.length });
      try {
        const made = await api("POST", `/api/spaces/${space.id}/pupils`, body);
        drafts.names = "";
        checked = null;
        await showSheet({ kind: "pupils", logins: made.pupils, lang: made.pupils[0]?.language });
        refresh();
      } catch (err) {
        fail(err);
        button.disabled = false;
        button.textContent = t("members.pupils.create");
      }
    }

    const form = h("form", { class: "members-form members-pupils", "aria-labelledby": "members-pupils-title" },
      h("div", { class: "field" }, h("label", { for: "pupil-names" }, t("members.pupils.names")), names,
        h("span", { id: "pupil-names-help", class: "members-note" }, t("members.pupils.names_help"))),
      h("div", { class: "field" }, h("label", { for: "pupil-file" }, t("members.pupils.file")), file),
      h("div", { class: "field" }, h("label", { for: "pupil-school" }, t("members.pupils.school")), school),
      h("div", { class: "field" }, h("label", { for: "pupil-language" }, t("members.sheet.language")), language),
      h("button", { type: "submit" }, t("members.pupils.check")),
      preview);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      check();
    });
    renderPreview();
    return h("section", { "aria-labelledby": "members-pupils-title" },
      h("h2", { id: "members-pupils-title" }, t("members.pupils.title")),
      h("p", { class: "members-note" }, t("members.pupils.note")),
      form);
  }

  // -- the one-time sheet -------------------------------------------------------------------

  // The cards are in the sheet's language (sheet.w), which may not be the teacher's.
  function loginCard(login) {
    const w = sheet.w;
    return h("article", { class: "print-card", "data-testid": "login-card" },
      h("p", { class: "print-project" }, space.name),
      h("h3", { class: "print-name" }, login.name),
      h("dl", {},
        h("dt", {}, w("members.card.username")), h("dd", { class: "print-secret", "data-field": "username" }, login.username),
        h("dt", {}, w("members.card.password")), h("dd", { class: "print-secret", "data-field": "password" }, login.password),
        h("dt", {}, w("members.card.address")), h("dd", { "data-field": "address" }, loginAddress())),
      h("p", { class: "print-how" }, w("members.card.how")));
  }

  function codeCard({ invitation, code }) {
    const w = sheet.w;
    return h("article", { class: "print-card print-card-code", "data-testid": "code-card" },
      h("p", { class: "print-project" }, space.name),
      h("h3", { class: "print-name" }, w("members.code.invited", { role: w(`members.role.${invitation.role}`) })),
      invitation.label ? h("p", {}, w("members.code.for", { label: invitation.label })) : null,
      // The code on a line of its own, its groups of four kept whole (a line breaks only between them).
      h("dl", { class: "print-code-line" },
        h("dt", {}, w("members.code.code")),
        h("dd", { class: "print-secret", "data-field": "code" },
          code.split("-").map((group, i) => [i ? "-" : null, h("span", {}, group)]))),
      h("div", { class: "print-code-body" },
        h("dl", {},
          h("dt", {}, w("members.card.address")), h("dd", { "data-field": "address" }, joinAddress()),
          h("dt", {}, w("members.code.until")), h("dd", {}, formatDateIn(sheet.lang, invitation.expires_at))),
        qrSvg(joinAddress(), w("members.code.qr", { address: joinAddress() }))),
      h("p", { class: "print-how" }, w("members.code.how")),
      invitation.note ? h("p", { class: "print-how" }, w("members.pending.note", { note: invitation.note })) : null);
  }

  function sheetView() {
    const title = sheet.kind === "code" ? t("members.sheet.code_title")
      : sheet.kind === "reset" ? t("members.sheet.reset_title", { name: sheet.logins[0].name })
        : t("members.sheet.title", { n: sheet.logins.length });
    const cards = sheet.kind === "code" ? [codeCard(sheet)] : sheet.logins.map(loginCard);
    return h("div", { class: "print-sheet", "data-testid": "sheet", "data-kind": sheet.kind },
      h("div", { class: "print-tools" },
        h("h2", { id: "sheet-title", tabindex: "-1" }, title),
        h("p", { class: "members-warning", role: "note" }, t(sheet.kind === "code" ? "members.sheet.once_code" : "members.sheet.once")),
        h("p", { class: "members-note" }, t("members.sheet.print_help")),
        h("div", { class: "print-buttons" },
          h("button", { type: "button", "data-action": "print", onclick: () => window.print() }, t("members.sheet.print")),
          h("button", { type: "button", "data-action": "done", onclick: () => leaveSheet() }, t("members.sheet.done")))),
      h("div", { class: "print-cards", lang: sheet.lang, dir: direction(sheet.lang) }, cards));
  }

  // Leaving the sheet — its button, a link of the menu, the back button, logging out, closing
  // the tab — asks first: the passwords (or the code) are never shown again.
  async function showSheet(next) {
    next.lang = next.lang || projectLanguage();
    next.w = await wordsIn(next.lang);
    sheet = next;
    if (!guarded) {
      guarded = true;
      history.pushState({ membersSheet: true }, "", location.href); // the back button comes here first
      document.addEventListener("click", onClickAway, true);
      window.addEventListener("popstate", onBack);
      window.addEventListener("beforeunload", onUnload);
    }
    view.render();
    view.el.querySelector("#sheet-title")?.focus();
  }

  let guarded = false;

  function unguard() {
    if (!guarded) return;
    guarded = false;
    document.removeEventListener("click", onClickAway, true);
    window.removeEventListener("popstate", onBack);
    window.removeEventListener("beforeunload", onUnload);
  }

  async function mayLeave() {
    const text = sheet.kind === "code" ? t("members.sheet.leave_code") : t("members.sheet.leave");
    return confirmed(t("members.sheet.leave_title"), text, t("members.sheet.leave_confirm"));
  }

  async function leaveSheet() {
    if (!(await mayLeave())) return;
    closeSheet();
    if (history.state?.membersSheet) history.back(); // the extra entry: same address, no reload
  }

  function closeSheet() {
    sheet = null;
    unguard();
    view.render();
    view.el.querySelector("h1")?.focus();
  }

  async function onClickAway(ev) {
    const target = ev.target.closest?.("a[href], header button");
    if (!sheet || !target || view.el.contains(target) || target.closest("dialog")) return;
    if (target.getAttribute("href") === "#main") return; // the skip link stays on the page
    ev.preventDefault();
    ev.stopImmediatePropagation();
    if (!(await mayLeave())) return;
    closeSheet();
    target.click(); // now unguarded: the link or the button does what it does
  }

  async function onBack() {
    if (!sheet) return;
    if (await mayLeave()) {
      closeSheet();
      history.back();
    } else {
      history.pushState({ membersSheet: true }, "", location.href);
    }
  }

  function onUnload(ev) {
    if (!sheet) return;
    ev.preventDefault();
    ev.returnValue = ""; // the browser's own "leave this page?"
  }

  // -- the screen -----------------------------------------------------------------------------

  // The lists are redrawn when they change (an action, someone joining); the forms are not, so
  // nothing being typed is lost.
  const parts = {};

  function renderLists() {
    if (!parts.list) return;
    // The keyboard's place is kept: the same button of the same person, if they are still listed.
    const active = document.activeElement;
    const row = view.el.contains(active) ? active.closest("[data-user], [data-invitation]") : null;
    const again = row && active.dataset.action
      ? `${row.dataset.user ? `[data-user="${row.dataset.user}"]` : `[data-invitation="${row.dataset.invitation}"]`} [data-action="${active.dataset.action}"]`
      : null;
    replace(parts.list, memberSection());
    if (parts.pending) replace(parts.pending, pendingSection());
    replace(parts.former, formerSection());
    if (again) view.el.querySelector(again)?.focus();
  }

  view.render = () => {
    const heading = h("h1", { tabindex: "-1" }, t("members.title"), " — ", space.name);
    for (const key of Object.keys(parts)) delete parts[key];
    if (sheet) {
      replace(view.el, heading, sheetView());
      return;
    }
    if (!loaded) {
      replace(view.el, heading, h("p", {}, t("members.loading")));
      return;
    }
    parts.list = h("section", { "aria-labelledby": "members-list-title" });
    parts.pending = admin() ? h("section", { "aria-labelledby": "members-pending-title" }) : null;
    parts.former = h("section", { "aria-labelledby": "members-former-title" });
    const toc = [["members-list-title", "members.toc.list"], ["members-pupils-title", "members.pupils.title"],
      ...(admin() ? [["members-invite-title", "members.invite.title"], ["members-pending-title", "members.pending.title"]] : []),
      ["members-former-title", "members.former.title"]];
    replace(view.el, heading,
      h("nav", { class: "members-toc", "aria-label": t("members.toc") }, h("ul", {},
        toc.map(([id, key]) => h("li", {},
          h("a", { href: `#${id}`, onclick: (ev) => { ev.preventDefault(); view.el.querySelector(`#${id}`)?.scrollIntoView(); } }, t(key)))))),
      parts.list, pupilsSection(), admin() ? inviteSection() : null, parts.pending, parts.former);
    renderLists();
  };

  // Followed from the feed's head: what happened before is in the lists already.
  async function follow() {
    if (!space.feed) return;
    try {
      const page = await api("GET", `/api/spaces/${space.id}/activity?limit=1`);
      await live.subscribe(space.feed, page.head);
    } catch {
      // the lists still work; they follow only this teacher's own changes
    }
  }

  let soon = null; // several changes at once (a class joining) make one refresh
  function refreshSoon() {
    clearTimeout(soon);
    soon = setTimeout(refresh, 250);
  }

  view.start = () => {
    view.render();
    refresh();
    follow();
  };
  view.dispose = () => {
    clearTimeout(soon);
    unguard();
    if (space.feed) live.unsubscribe(space.feed);
  };
  // Someone joined, left or changed role (an invitation accepted, another teacher's change): the
  // feed says so, and the lists follow.
  view.onEvent = (e) => {
    if (e.channel === space.feed && String(e.kind || "").startsWith("member.")) refreshSoon();
  };
  // A role change of the viewer: a teacher admin made a teacher member (or back) sees what the
  // new role may do; anyone else is no longer a teacher here, and the console closes.
  view.rightsChanged = () => {
    const now = currentSpace(space.id)?.role;
    if (hasMembersScreen(now)) {
      if (now !== role) {
        role = now;
        if (!sheet) view.render();
        refresh();
      }
      return;
    }
    role = now;
    sheet = null;
    unguard();
    replace(view.el, h("h1", {}, t("members.title"), " — ", space.name), h("p", { class: "error" }, t("members.not_teacher")));
  };
  view.render();
  return view;
}
