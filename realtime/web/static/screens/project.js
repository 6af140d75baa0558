// A teacher admin's console for one project (#/project/<id>/<section>): its rooms (made,
// renamed, archived, deleted), closing and reopening it, its public view (off until they turn it
// on), its bots (a token shown once) and its audit log (filtered by the server, exported as CSV).
// The server decides who may; the menu shows this screen to the project's teacher admins only.
// And "New room" (#/new-room/<id>): making a room, nothing else, for whoever may make one
// somewhere in the project — a pupil admin in the activities (docs/roles.md) — teacher admins too.

import { api, h, replace } from "../dom.js";
import { byName, formatDateTime, has, languageNames, t } from "../i18n.js";
import { currentSpace, roomAreas } from "../state.js";
import { confirmed, dialog, fail, field, toast } from "../ui.js";

const SECTIONS = ["rooms", "project", "bots", "audit"];
// Rooms are deleted only in the areas where rooms are made (docs/roles.md, "Rooms archived and
// deleted"); the rooms of the other areas came with the project and are archived instead.
const ROOMS_MADE_IN = ["activities"];
const AREAS = ["home", "activities", "teachers_room", "pupils_corner", "chat"];
// Every kind of entry the audit log holds in a project (docs/protocol.md, "Audit log").
const AUDIT_ACTIONS = [
  "room.created", "room.rename", "room.archive", "room.unarchive", "room.delete",
  "space.create", "space.rename", "space.close", "space.reopen", "space.public_on", "space.public_off", "space.language",
  "bot.create", "bot.revoke",
  "member.joined", "member.role_changed", "member.removed", "member.restored", "member.invite",
  "invitation.accepted", "invitation.declined", "invitation.revoked", "member.password_reset",
  "member.mute", "member.unmute", "login.locked", "login.unlocked", "account.erased", "profile.clear",
  "message.report", "message.hide", "message.unhide", "message.delete", "report.resolve", "report.dismiss",
  "mail.report", "mail_report.view",
];
const PAGE = 50;

// The column's name before each cell, on a phone (style.css shows it), as the language writes it.
function cellLabel(key) {
  return t("project.cell_label", { label: t(key) });
}

function sectionHref(spaceId, section) {
  return `#/project/${spaceId}/${section}`;
}

// A local day (yyyy-mm-dd from a date input) as the instant it starts where the teacher is.
function dayStart(value, plusDays = 0) {
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d + plusDays).toISOString();
}

// The areas where the viewer may make a room: those where one of the project's rooms grants them
// `create_room` (the welcome's rights). Empty: no "New room" for them.

// The form that makes a room (POST /api/spaces/<id>/rooms) in one of the viewer's areas; `made`
// is told of each room made. `setClosed(true)`: a closed project makes none (the button is off).
function roomForm(id, me, made = () => {}) {
  const areas = roomAreas(me());
  const name = h("input", { id: "project-room-name", name: "name", required: true, maxlength: 100, autocomplete: "off" });
  const area = h("select", { id: "project-room-area", name: "area" },
    areas.map((a) => h("option", { value: a }, t(`area.${a}`))));
  const create = h("button", { type: "submit" }, t("project.rooms.create"));
  const form = h("form", { class: "project-form", "data-testid": "room-create" },
    h("div", { class: "field" }, h("label", { for: "project-room-area" }, t("project.rooms.area")), area),
    h("div", { class: "field grow" }, h("label", { for: "project-room-name" }, t("project.rooms.name")), name),
    create);
  form.hidden = areas.length === 0;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const value = name.value.trim();
    if (!value) return name.focus();
    create.disabled = true;
    try {
      const room = await api("POST", `/api/spaces/${id}/rooms`, { area: area.value, name: value });
      name.value = "";
      toast(t("project.rooms.created", { name: room.name }));
      made(room);
    } catch (err) {
      fail(err);
    } finally {
      create.disabled = me()?.closed || false;
    }
  });
  return { form, setClosed: (closed) => { create.disabled = closed; } };
}

// #/new-room/<id>: a room made, then opened (once the fresh welcome lists it). Only the form:
// renaming, archiving, deleting, bots, closing and the audit log stay the teacher admins'.
export function newRoomView(space) {
  const id = space.id;
  const me = () => currentSpace(id);
  const view = { el: h("section", { class: "project-view new-room-view", "data-testid": "new-room" }) };
  let waiting = null; // the room just made, until the welcome lists it
  let setClosed = () => {};
  const closedNote = h("p", { class: "notice", role: "status" });

  function openWhenListed() {
    if (waiting !== null && me()?.rooms.some((r) => r.id === waiting)) {
      location.hash = `#/room/${waiting}`;
      waiting = null;
    }
  }

  function drawClosed() {
    const closed = me()?.closed || false;
    closedNote.textContent = closed ? t("project.new_room.closed") : "";
    closedNote.hidden = !closed;
    setClosed(closed);
  }

  view.render = () => {
    const title = h("h1", {}, t("project.new_room.title"), h("span", { class: "area" }, me()?.name || space.name));
    if (!roomAreas(me()).length) {
      replace(view.el, title, h("p", { role: "alert" }, t("project.new_room.gone")));
      return;
    }
    const built = roomForm(id, me, (room) => {
      waiting = room.id;
      openWhenListed();
    });
    setClosed = built.setClosed;
    replace(view.el, title, h("p", { class: "hint" }, t("project.new_room.hint")), closedNote, built.form);
    drawClosed();
  };
  view.rightsChanged = () => {
    openWhenListed();
    if (!roomAreas(me()).length || !view.el.querySelector("form")) return view.render();
    drawClosed();
  };
  view.render();
  return view;
}

export function projectView(space, section = "rooms") {
  if (!SECTIONS.includes(section)) section = "rooms";
  const id = space.id;
  const me = () => currentSpace(id);
  const view = { el: h("section", { class: "project-view", "data-testid": "project", "data-section": section }) };
  const body = h("div", { class: "project-body" });
  let refresh = () => {}; // the open section's redraw after a fresh welcome

  function header() {
    const tabs = SECTIONS.map((s) => h("li", {},
      h("a", { class: "link", href: sectionHref(id, s), "aria-current": s === section ? "page" : null, "data-section": s },
        t(`project.section.${s}`))));
    return [
      h("h1", {}, t("project.title", { name: me()?.name || space.name })),
      h("nav", { class: "project-tabs", "aria-label": t("project.sections") }, h("ul", {}, tabs)),
    ];
  }

  // -- rooms ------------------------------------------------------------------------------

  function roomsSection() {
    const { form, setClosed } = roomForm(id, me);
    const closedNote = h("p", { class: "notice", role: "status" });
    const table = h("div", { class: "project-rooms" });

    function draw() {
      const sp = me();
      closedNote.textContent = sp.closed ? t("project.rooms.closed_note") : "";
      closedNote.hidden = !sp.closed;
      setClosed(sp.closed);
      const rooms = [...sp.rooms].sort((a, b) => AREAS.indexOf(a.area) - AREAS.indexOf(b.area) || a.id - b.id);
      replace(table, h("table", { class: "project-table", "data-testid": "rooms" },
        h("caption", {}, t("project.rooms.caption", { n: rooms.length })),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, t("project.rooms.col_name")),
          h("th", { scope: "col" }, t("project.rooms.col_area")),
          h("th", { scope: "col" }, t("project.rooms.col_state")),
          h("th", { scope: "col" }, t("project.col_actions")))),
        h("tbody", {}, rooms.map((r) => roomRow(r, sp.closed)))));
    }

    refresh = draw;
    draw();
    return [
      h("h2", {}, t("project.rooms.new")), form,
      h("h2", {}, t("project.rooms.list")),
      h("p", { class: "hint" }, t("project.rooms.hint")),
      closedNote, table,
    ];
  }

  function roomRow(r, closed) {
    const nameId = `project-room-${r.id}`;
    const button = (action, label, handler, danger = false) => h("button", {
      type: "button", "data-action": action, "aria-describedby": nameId, disabled: closed, class: danger ? "danger" : null,
      onclick: handler,
    }, label);
    const journal = r.kind === "journal";
    const actions = [button("rename", t("project.rooms.rename"), () => renameRoom(r))];
    if (!journal) {
      actions.push(r.archived
        ? button("unarchive", t("project.rooms.unarchive"), () => changeRoom(r, "unarchive"))
        : button("archive", t("project.rooms.archive"), () => changeRoom(r, "archive")));
      if (ROOMS_MADE_IN.includes(r.area)) actions.push(button("delete", t("project.rooms.delete"), () => changeRoom(r, "delete"), true));
    }
    const stateText = journal ? t("project.rooms.state_journal") : r.archived ? t("project.rooms.state_archived") : t("project.rooms.state_open");
    return h("tr", { "data-room": r.id, "data-state": r.archived ? "archived" : "open" },
      h("th", { scope: "row", id: nameId, "data-label": cellLabel("project.rooms.col_name") }, r.name),
      h("td", { "data-label": cellLabel("project.rooms.col_area") }, t(`area.${r.area}`)),
      h("td", { "data-label": cellLabel("project.rooms.col_state") }, stateText),
      h("td", { class: "actions", "data-label": cellLabel("project.col_actions") }, h("div", { class: "buttons" }, actions)));
  }

  async function renameRoom(r) {
    const answer = await dialog({
      title: t("project.rooms.rename_title", { name: r.name }),
      fields: [field(t("project.rooms.new_name"), "name", { value: r.name, required: true, maxlength: 100, autocomplete: "off" })],
      confirm: t("project.rooms.rename"), testid: "rename-dialog",
    });
    if (answer === null) return;
    try {
      const done = await api("PATCH", `/api/spaces/${id}/rooms/${r.id}`, { name: answer.name });
      if (done.changed) toast(t("project.rooms.renamed", { was: done.was, name: done.name }));
    } catch (err) {
      fail(err);
    }
  }

  async function changeRoom(r, change) {
    const danger = change === "delete";
    const ok = await confirmed(t(`project.rooms.${change}_title`, { name: r.name }), t(`project.rooms.${change}_confirm`, { name: r.name }),
      t(`project.rooms.${change}`), { danger });
    if (!ok) return;
    try {
      if (change === "delete") await api("DELETE", `/api/spaces/${id}/rooms/${r.id}`);
      else await api("POST", `/api/spaces/${id}/rooms/${r.id}/${change}`);
      toast(t(`project.rooms.${change}_done`, { name: r.name }));
    } catch (err) {
      fail(err);
    }
  }

  // -- the project: closed or open, its public view -------------------------------------------

  function projectSection() {
    const stateLine = h("p", { class: "project-state", "data-testid": "project-state" });
    const stateHelp = h("p", { class: "hint" });
    const toggle = h("button", { type: "button" });
    const publicLine = h("p", { "data-testid": "public-state" }, t("project.public.checking"));
    const publicLink = h("p", { class: "public-link" });
    const publicToggle = h("button", { type: "button", hidden: true });
    let isPublic = null;

    function draw() {
      const sp = me();
      stateLine.textContent = sp.closed ? t("project.state.closed") : t("project.state.open");
      stateLine.dataset.state = sp.closed ? "closed" : "open";
      stateHelp.textContent = sp.closed ? t("project.state.closed_help") : t("project.state.open_help");
      toggle.textContent = sp.closed ? t("project.reopen") : t("project.close");
      toggle.dataset.action = sp.closed ? "reopen" : "close";
      toggle.className = sp.closed ? "" : "danger";
    }

    toggle.addEventListener("click", async () => {
      const closing = !me().closed;
      const name = me().name;
      const ok = closing
        ? await confirmed(t("project.close_title", { name }), t("project.close_confirm"), t("project.close"))
        : await confirmed(t("project.reopen_title", { name }), t("project.reopen_confirm"), t("project.reopen"), { danger: false });
      if (!ok) return;
      try {
        await api("POST", `/api/spaces/${id}/${closing ? "close" : "reopen"}`);
        toast(closing ? t("project.closed_done") : t("project.reopened_done"));
      } catch (err) {
        fail(err);
      }
    });

    function drawPublic() {
      publicToggle.hidden = isPublic === null;
      replace(publicLink);
      if (isPublic === null) return;
      publicLine.textContent = isPublic ? t("project.public.on") : t("project.public.off");
      publicLine.dataset.state = isPublic ? "on" : "off";
      publicToggle.textContent = isPublic ? t("project.public.turn_off") : t("project.public.turn_on");
      publicToggle.dataset.action = isPublic ? "public-off" : "public-on";
      if (isPublic) {
        const address = `${location.origin}/public/${encodeURIComponent(me().slug)}`;
        replace(publicLink, t("project.public.address"), " ",
          h("a", { href: address, target: "_blank", rel: "noopener", "data-testid": "public-link" }, address));
      }
    }

    async function probePublic() {
      try {
        await api("GET", `/api/public/${encodeURIComponent(me().slug)}?limit=1`);
        isPublic = true;
      } catch (err) {
        if (err.code === "not_found") isPublic = false;
        else {
          publicLine.textContent = t("project.public.unknown");
          fail(err);
          return;
        }
      }
      drawPublic();
    }

    publicToggle.addEventListener("click", async () => {
      const turnOn = !isPublic;
      if (turnOn && !(await confirmed(t("project.public.on_title"), t("project.public.on_confirm"), t("project.public.turn_on"), { danger: false }))) return;
      if (!turnOn && !(await confirmed(t("project.public.off_title"), t("project.public.off_confirm"), t("project.public.turn_off"), { danger: false }))) return;
      try {
        const done = await api("POST", `/api/spaces/${id}/public`, { public: turnOn });
        isPublic = done.public;
        drawPublic();
        toast(isPublic ? t("project.public.on_done") : t("project.public.off_done"));
      } catch (err) {
        fail(err);
      }
    });

    refresh = draw;
    draw();
    probePublic();
    return [
      h("h2", {}, t("project.state.title")), stateLine, stateHelp, toggle,
      h("h2", {}, t("project.public.title")), publicLine, h("p", { class: "hint" }, t("project.public.help")),
      publicLink, publicToggle,
      ...languageSection(),
    ];
  }

  // The project's own language: pupils' new accounts start in it, their sheets are printed in it.
  function languageSection() {
    const select = h("select", { id: "project-language", name: "language", "aria-describedby": "project-language-hint" },
      Object.entries(languageNames()).map(([tag, name]) => h("option", { value: tag, lang: tag, selected: tag === (me().language || "en") }, name)));
    const form = h("form", { class: "project-form", "data-testid": "project-language" },
      h("div", { class: "field" }, h("label", { for: "project-language" }, t("project.language.title")), select),
      h("button", { type: "submit" }, t("project.language.save")));
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        await api("PUT", `/api/spaces/${id}/language`, { language: select.value });
        toast(t("project.language.saved"));
      } catch (err) {
        fail(err);
      }
    });
    return [h("h2", {}, t("project.language.title")), h("p", { class: "hint", id: "project-language-hint" }, t("project.language.hint")), form];
  }

  // -- bots ----------------------------------------------------------------------------------

  function botsSection() {
    const list = h("div", { class: "project-bots", "aria-live": "polite" }, h("p", {}, t("project.loading")));
    const name = h("input", { id: "project-bot-name", name: "name", required: true, maxlength: 100, autocomplete: "off" });
    const scopes = ["journal", "activity"].map((scope) => h("label", { class: "choice" },
      h("input", { type: "radio", name: "scope", value: scope, checked: scope === "journal" }),
      h("span", {}, h("strong", {}, t(`project.bots.scope.${scope}`)), " — ", t(`project.bots.scope_help.${scope}`))));
    const create = h("button", { type: "submit" }, t("project.bots.create"));
    const form = h("form", { class: "project-form column", "data-testid": "bot-create" },
      h("div", { class: "field" }, h("label", { for: "project-bot-name" }, t("project.bots.name")), name),
      h("fieldset", {}, h("legend", {}, t("project.bots.scope_legend")), scopes),
      create);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const value = name.value.trim();
      if (!value) return name.focus();
      const scope = form.querySelector("input[name=scope]:checked").value;
      create.disabled = true;
      try {
        const made = await api("POST", `/api/spaces/${id}/bots`, { name: value, scope });
        name.value = "";
        await showToken(made);
        load();
      } catch (err) {
        fail(err);
      } finally {
        create.disabled = false;
      }
    });

    async function load() {
      try {
        const { bots } = await api("GET", `/api/spaces/${id}/bots`);
        replace(list, bots.length ? h("table", { class: "project-table", "data-testid": "bots" },
          h("caption", {}, t("project.bots.caption", { n: bots.length })),
          h("thead", {}, h("tr", {},
            h("th", { scope: "col" }, t("project.bots.col_name")),
            h("th", { scope: "col" }, t("project.bots.col_scope")),
            h("th", { scope: "col" }, t("project.bots.col_by")),
            h("th", { scope: "col" }, t("project.bots.col_used")),
            h("th", { scope: "col" }, t("project.bots.col_state")),
            h("th", { scope: "col" }, t("project.col_actions")))),
          h("tbody", {}, [...bots].reverse().map(botRow))) : h("p", {}, t("project.bots.none")));
      } catch (err) {
        replace(list);
        fail(err);
      }
    }

    function botRow(b) {
      const nameId = `project-bot-${b.id}`;
      const state = b.revoked_at
        ? t(`project.bots.revoked.${b.revoked_reason || "revoked"}`, { when: formatDateTime(b.revoked_at) })
        : t("project.bots.active");
      return h("tr", { "data-bot": b.id, "data-state": b.revoked_at ? "revoked" : "active" },
        h("th", { scope: "row", id: nameId, "data-label": cellLabel("project.bots.col_name") }, b.name),
        h("td", { "data-label": cellLabel("project.bots.col_scope") }, t(`project.bots.scope.${b.scope}`)),
        h("td", { "data-label": cellLabel("project.bots.col_by") }, b.created_by?.name || t("project.audit.system")),
        h("td", { "data-label": cellLabel("project.bots.col_used") }, b.last_used_at ? formatDateTime(b.last_used_at) : t("project.bots.never")),
        h("td", { "data-label": cellLabel("project.bots.col_state") }, state),
        h("td", { class: "actions", "data-label": cellLabel("project.col_actions") }, b.revoked_at ? null : h("div", { class: "buttons" }, h("button", {
          type: "button", class: "danger", "data-action": "revoke", "aria-describedby": nameId, onclick: () => revoke(b),
        }, t("project.bots.revoke")))));
    }

    async function revoke(b) {
      if (!(await confirmed(t("project.bots.revoke_title", { name: b.name }), t("project.bots.revoke_confirm"), t("project.bots.revoke")))) return;
      try {
        await api("DELETE", `/api/spaces/${id}/bots/${b.id}`);
        toast(t("project.bots.revoked_done", { name: b.name }));
        load();
      } catch (err) {
        fail(err);
      }
    }

    load();
    return [
      h("h2", {}, t("project.bots.new")), h("p", { class: "hint" }, t("project.bots.help")), form,
      h("h2", {}, t("project.bots.list")), list,
    ];
  }

  // The token, once: copied or not, it is gone when the dialog closes (the server keeps only its hash).
  function showToken(made) {
    return new Promise((resolve) => {
      let copied = false;
      let warned = false;
      const input = h("input", { id: "project-bot-token", readonly: true, spellcheck: "false", autocomplete: "off", "data-testid": "bot-token" });
      input.value = made.token; // the property, not an attribute: nowhere in the markup
      const warning = h("p", { class: "error", role: "alert" });
      const warn = () => {
        warned = true;
        warning.textContent = t("project.bots.not_copied");
      };
      const copy = h("button", { type: "button", "data-action": "copy" }, t("project.bots.copy"));
      copy.addEventListener("click", async () => {
        try {
          await navigator.clipboard.writeText(input.value);
        } catch {
          input.select(); // no clipboard API here (or refused): the selection, copied the old way
          if (!document.execCommand("copy")) return toast(t("project.bots.copy_failed"));
        }
        copied = true;
        copy.textContent = t("project.bots.copied");
        warning.textContent = "";
      });
      const done = h("button", { type: "button", class: "primary", "data-action": "done" }, t("project.bots.done"));
      const box = h("dialog", { "aria-labelledby": "token-title", "data-testid": "token-dialog" },
        h("h2", { id: "token-title" }, t("project.bots.token_title", { name: made.name })),
        h("p", {}, t("project.bots.token_once")),
        h("div", { class: "field" }, h("label", { for: "project-bot-token" }, t("project.bots.token")), input),
        warning,
        h("div", { class: "dialog-actions" }, copy, done));
      done.addEventListener("click", () => (copied || warned ? box.close() : warn()));
      box.addEventListener("cancel", (ev) => {
        if (!copied && !warned) {
          ev.preventDefault();
          warn();
        }
      });
      box.addEventListener("close", () => {
        input.value = "";
        box.remove();
        resolve();
      });
      document.body.appendChild(box);
      box.showModal();
      input.focus();
      input.select();
    });
  }

  // -- the audit log -------------------------------------------------------------------------

  function auditSection() {
    const people = new Map(); // user id -> name, to name whom an entry is about
    const inviters = new Map(); // member's user id -> who invited them (members' `invited_by`)
    const bots = new Map();
    const filters = { action: "", actor: "", from: "", to: "" };
    let before = null;
    const rows = h("tbody", {});
    const older = h("button", { type: "button", class: "older", hidden: true, "data-action": "older" }, t("project.audit.older"));
    const summary = h("p", { class: "hint", role: "status", "data-testid": "audit-count" });
    const download = h("a", { class: "button-link", "data-testid": "audit-csv" }, t("project.audit.csv"));
    const action = h("select", { id: "audit-action", name: "action" },
      h("option", { value: "" }, t("project.audit.all_actions")),
      AUDIT_ACTIONS.map((a) => [a, t(`project.audit.kind.${a}`)]).sort((x, y) => byName(x[1], y[1]))
        .map(([a, label]) => h("option", { value: a }, label)));
    const actor = h("select", { id: "audit-actor", name: "actor" }, h("option", { value: "" }, t("project.audit.all_members")));
    const from = h("input", { id: "audit-from", name: "from", type: "date" });
    const to = h("input", { id: "audit-to", name: "to", type: "date" });
    const form = h("form", { id: "audit-filters", class: "project-form audit-filters", role: "search", "aria-label": t("project.audit.filters"), "data-testid": "audit-filters" },
      h("div", { class: "field" }, h("label", { for: "audit-action" }, t("project.audit.filter_action")), action),
      h("div", { class: "field" }, h("label", { for: "audit-actor" }, t("project.audit.filter_actor")), actor),
      h("div", { class: "field" }, h("label", { for: "audit-from" }, t("project.audit.filter_from")), from),
      h("div", { class: "field" }, h("label", { for: "audit-to" }, t("project.audit.filter_to")), to),
      h("div", { class: "buttons" },
        h("button", { type: "submit", "data-action": "filter" }, t("project.audit.apply")),
        h("button", { type: "reset", class: "secondary", "data-action": "clear" }, t("project.audit.clear"))));
    // On a phone the filters fold behind one button (style.css shows it there only), which says
    // how many are in force; on a wide screen they are one row, always there.
    const toggle = h("button", {
      type: "button", class: "secondary audit-filters-toggle", "aria-expanded": "false", "aria-controls": "audit-filters",
      "data-action": "filters",
      onclick: () => {
        const open = toggle.getAttribute("aria-expanded") !== "true";
        toggle.setAttribute("aria-expanded", String(open));
        form.classList.toggle("open", open);
        if (open) action.focus();
      },
    });
    function drawToggle() {
      const n = Object.values(filters).filter(Boolean).length;
      toggle.textContent = n ? t("project.audit.filters_on", { n }) : t("project.audit.filters_toggle");
    }
    drawToggle();
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      Object.assign(filters, { action: action.value, actor: actor.value, from: from.value, to: to.value });
      drawToggle();
      if (toggle.offsetParent && form.classList.contains("open")) { // a phone: fold them, the entries show
        toggle.setAttribute("aria-expanded", "false");
        form.classList.remove("open");
        toggle.focus();
      }
      load(true);
    });
    form.addEventListener("reset", () => {
      Object.assign(filters, { action: "", actor: "", from: "", to: "" });
      drawToggle();
      setTimeout(() => load(true)); // once the inputs are emptied
    });

    function query() {
      const q = new URLSearchParams();
      if (filters.action) q.set("action", filters.action);
      if (filters.actor) q.set("actor", filters.actor);
      if (filters.from) q.set("since", dayStart(filters.from));
      if (filters.to) q.set("until", dayStart(filters.to, 1)); // the whole of the last day
      return q;
    }

    function roomName(roomId) {
      return me()?.rooms.find((r) => r.id === roomId)?.name || t("project.audit.a_room");
    }

    function target(e) {
      const d = e.details || {};
      if (e.target_kind === "user") return people.get(e.target_id) || t("project.audit.member_n", { id: e.target_id });
      if (e.target_kind === "bot") return bots.get(e.target_id) || d.name || t("project.audit.bot_n", { id: e.target_id });
      if (e.target_kind === "room") return d.name || roomName(e.target_id);
      return "";
    }

    function what(e) {
      const d = e.details || {};
      const vars = {
        target: target(e), name: d.name ?? "", was: d.was ?? "", label: d.label || "—",
        area: d.area ? t(`area.${d.area}`) : "", role: d.role ? t(`project.role.${d.role}`) : "",
        oldrole: d.was && e.action === "member.role_changed" ? t(`project.role.${d.was}`) : "",
        room: d.room_id ? roomName(d.room_id) : "", report: d.report_id ?? "",
        scope: !d.scope ? "" : AREAS.includes(d.scope) ? t(`area.${d.scope}`) : t(`project.audit.scope.${d.scope}`),
        until: d.until ? formatDateTime(d.until) : "", n: (d.user_ids || []).length, failures: d.failures ?? "",
        author: d.author_id ? people.get(d.author_id) || t("project.audit.member_n", { id: d.author_id }) : "",
        scopeName: d.scope && (d.scope === "journal" || d.scope === "activity") ? t(`project.bots.scope.${d.scope}`) : "",
        action: e.action, language: d.language ? languageNames()[d.language] || d.language : "",
      };
      let key = `project.audit.action.${e.action}`;
      if (e.action === "member.removed" && e.actor_id === e.target_id) key += ".self";
      else if (e.action === "member.joined" && e.actor_id === e.target_id) {
        // Joined by answering an invitation: the actor is the newcomer, named once (in "Who"),
        // with whoever invited them when the member list still says.
        const inviter = people.get(inviters.get(e.target_id));
        vars.inviter = inviter || "";
        key += inviter ? ".invited" : ".self";
      }
      else if (e.action === "member.invite" && e.target_kind !== "user") key += e.target_kind === "users" ? ".pupils" : ".code";
      else if (e.action === "bot.revoke" && e.reason && e.reason !== "revoked") key += `.${e.reason}`;
      else if (e.action === "account.erased" && d.own) key += ".own";
      else if (e.action === "space.close" && d.all) key += ".all";
      else if (e.action === "space.rename" && !d.name) key += ".description";
      return has(key) ? t(key, vars) : t("project.audit.action.other", vars);
    }

    function who(e) {
      if (e.actor) return e.actor;
      return e.actor_id ? t("project.audit.member_n", { id: e.actor_id }) : t("project.audit.system");
    }

    // The reason a moderator or a reporter gave; a revoked bot's is said in the sentence already.
    function reason(e) {
      return e.action === "bot.revoke" ? null : e.reason || null;
    }

    function row(e) {
      return h("tr", { "data-entry": e.id, "data-action": e.action },
        h("td", { "data-label": cellLabel("project.audit.col_when") }, h("time", { datetime: e.at }, formatDateTime(e.at))),
        h("td", { "data-label": cellLabel("project.audit.col_who") }, who(e)),
        h("td", { "data-label": cellLabel("project.audit.col_what") }, what(e)),
        h("td", { "data-label": cellLabel("project.audit.col_reason") }, reason(e)));
    }

    let shown = 0;
    let generation = 0; // a page asked for before the filters changed is dropped when it comes
    async function load(fresh) {
      if (fresh) {
        before = null;
        shown = 0;
        generation += 1;
      }
      const mine = generation;
      const q = query();
      q.set("limit", PAGE);
      if (before) q.set("before", before);
      older.disabled = true;
      try {
        const page = await api("GET", `/api/spaces/${id}/audit?${q}`);
        if (mine !== generation) return;
        if (fresh) replace(rows);
        for (const e of page.entries) rows.appendChild(row(e));
        shown += page.entries.length;
        if (page.entries.length) before = page.entries[page.entries.length - 1].id;
        older.hidden = !page.more;
        summary.textContent = shown ? t(page.more ? "project.audit.count_more" : "project.audit.count", { n: shown }) : t("project.audit.empty");
        const csv = query();
        csv.set("format", "csv");
        download.href = `/api/spaces/${id}/audit?${csv}`;
        download.setAttribute("download", `audit-${me()?.slug || id}.csv`);
      } catch (err) {
        fail(err);
      } finally {
        older.disabled = false;
      }
    }
    older.addEventListener("click", () => load(false));

    async function start() {
      // Names for the entries: the members now, and the project's bots (both for teacher admins).
      const [members, botList] = await Promise.all([
        api("GET", `/api/spaces/${id}/members`).catch(() => ({ members: [] })),
        api("GET", `/api/spaces/${id}/bots`).catch(() => ({ bots: [] })),
      ]);
      for (const m of members.members) {
        people.set(m.id, m.name);
        if (m.invited_by) inviters.set(m.id, m.invited_by);
      }
      for (const b of botList.bots) bots.set(b.id, b.name);
      const sorted = [...members.members].sort((a, b) => byName(a.name, b.name));
      for (const m of sorted) actor.appendChild(h("option", { value: m.id }, `${m.name} (${t(`project.role.${m.role}`)})`));
      await load(true);
    }
    start();

    return [
      h("h2", {}, t("project.audit.title")),
      h("p", { class: "hint" }, t("project.audit.help")),
      toggle, form,
      h("div", { class: "audit-bar" }, summary, download),
      h("div", { class: "table-wrap" }, h("table", { class: "project-table audit", "data-testid": "audit" },
        h("caption", { class: "visually-hidden" }, t("project.audit.title")),
        h("thead", {}, h("tr", {},
          h("th", { scope: "col" }, t("project.audit.col_when")),
          h("th", { scope: "col" }, t("project.audit.col_who")),
          h("th", { scope: "col" }, t("project.audit.col_what")),
          h("th", { scope: "col" }, t("project.audit.col_reason")))),
        rows)),
      older,
    ];
  }

  // -- the screen ----------------------------------------------------------------------------

  const builders = { rooms: roomsSection, project: projectSection, bots: botsSection, audit: auditSection };

  view.render = () => {
    if (me()?.role !== "teacher_admin") {
      replace(view.el, h("h1", {}, t("project.title", { name: space.name })), h("p", { role: "alert" }, t("project.gone")));
      return;
    }
    replace(body, builders[section]());
    replace(view.el, header(), body);
  };
  view.rightsChanged = () => {
    if (me()?.role !== "teacher_admin" || !view.el.contains(body)) return view.render();
    view.el.querySelector("h1").textContent = t("project.title", { name: me().name });
    refresh();
  };
  view.render();
  return view;
}
