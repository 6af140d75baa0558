// The platform's own screen (#/platform), for platform staff (welcome's `user.platform_role`):
// - a platform moderator gets every project's moderation queue, live (`user.moderation`), and
//   the projects they cover, each with its open reports — to review one project's reports and
//   mutes, or all of them at once;
// - a platform administrator gets the projects console: every project (name, address, members,
//   teacher admins), a new project, a rename, closing or reopening one, closing every open one
//   at the start of a school year, and a platform moderator placed in one.
// docs/protocol.md, "Projects (platform administrators)" and "Moderation over HTTP".

import { api, h, replace } from "../dom.js";
import { formatDate, t } from "../i18n.js";
import { state } from "../state.js";
import { confirmed, dialog, fail, field, toast } from "../ui.js";
import { reviewPanel } from "./moderation.js";

export function platformView() {
  return state.me.user.platform_role === "admin" ? consoleView() : moderatorView();
}

// The projects of `path`, newest first, a page of 100 at a time, kept by id in `projects`;
// `drawn()` after each page. `more`: whether more are waiting; `restart()` from the newest.
function projectPager(path, projects, drawn) {
  const pager = { more: false, before: null };
  pager.load = async () => {
    try {
      const query = new URLSearchParams({ limit: "100" });
      if (pager.before) query.set("before", String(pager.before));
      const page = await api("GET", `${path}?${query}`);
      for (const p of page.projects) projects.set(p.id, p);
      pager.more = page.more;
      if (page.projects.length) pager.before = page.projects[page.projects.length - 1].id;
      drawn();
    } catch (err) {
      fail(err);
    }
  };
  pager.restart = () => {
    projects.clear();
    pager.before = null;
    return pager.load();
  };
  return pager;
}

function teacherAdmins(p) {
  return (p.teacher_admins || []).map((a) => `${a.name}${a.school ? ` (${a.school})` : ""}`).join(", ") || "—";
}

// -- platform moderators -------------------------------------------------------------------------

function moderatorView() {
  const projects = new Map(); // id -> project
  const openBySpace = new Map(); // project id -> open report ids (from the queue's open reports)
  let chosen = null; // the project whose reports are shown (null: every project)
  const list = h("ul", { class: "projects", "data-testid": "projects" }, h("li", {}, t("moderation.loading")));
  const panel = reviewPanel({
    spaceId: null, channel: state.me.user.moderation, mutes: true,
    projectName: (id) => projects.get(id)?.name || t("platform.project_n", { id }),
  });
  const scopeLine = h("p", { class: "scope", "data-testid": "queue-scope", "aria-live": "polite" });
  const pager = projectPager("/api/moderation/spaces", projects, () => renderList());

  function count(id) {
    return openBySpace.get(id)?.size || 0;
  }

  function renderList() {
    const items = [h("li", {}, h("button", {
      type: "button", class: "link", "aria-pressed": String(chosen === null), onclick: () => choose(null),
    }, t("platform.every_project")))];
    for (const p of projects.values()) {
      const n = count(p.id);
      items.push(h("li", { "data-project": p.id },
        h("button", { type: "button", class: "link", "aria-pressed": String(chosen === p.id), onclick: () => choose(p.id) },
          p.name, p.closed ? h("span", { class: "badge" }, t("nav.closed")) : null,
          n ? h("span", { class: "count" }, t("moderation.open_count", { n })) : null),
        h("span", { class: "meta" }, t("platform.members", { n: p.members }), " · ", teacherAdmins(p))));
    }
    replace(list, items);
    if (pager.more) list.appendChild(h("li", {}, h("button", { type: "button", class: "secondary", onclick: pager.load }, t("platform.more"))));
    scopeLine.textContent = chosen === null ? t("platform.showing_all") : t("platform.showing", { name: projects.get(chosen)?.name || "" });
  }


  // The open reports of every project, counted by project (one page: the queue shows the rest).
  async function countOpen() {
    try {
      const page = await api("GET", "/api/moderation/reports?status=open&limit=100");
      openBySpace.clear();
      for (const r of page.reports) {
        if (!openBySpace.has(r.space)) openBySpace.set(r.space, new Set());
        openBySpace.get(r.space).add(r.id);
      }
      renderList();
    } catch (err) {
      fail(err);
    }
  }

  function choose(id) {
    chosen = id;
    renderList();
    panel.show(id);
  }

  return {
    el: h("section", { class: "platform-view", "data-testid": "platform" },
      h("h1", {}, t("platform.moderator_title")),
      h("p", { class: "intro" }, t("platform.moderator_intro")),
      h("div", { class: "platform-body" },
        h("section", { class: "platform-queue", "aria-labelledby": "platform-queue" },
          h("h2", { id: "platform-queue" }, t("platform.queue")), scopeLine, panel.el),
        h("section", { class: "platform-projects", "aria-labelledby": "platform-projects" },
          h("h2", { id: "platform-projects" }, t("platform.projects")), list))),
    async start() {
      await Promise.all([pager.load(), countOpen(), panel.start()]);
    },
    onEvent(e) {
      if (e.channel !== state.me.user.moderation || !e.report) return;
      const r = e.report;
      if (!openBySpace.has(r.space)) openBySpace.set(r.space, new Set());
      if (r.status === "open") openBySpace.get(r.space).add(r.id);
      else openBySpace.get(r.space).delete(r.id);
      renderList();
      panel.onEvent(e);
    },
  };
}

// -- platform administrators ---------------------------------------------------------------------

function consoleView() {
  const projects = new Map();
  const list = h("ul", { class: "projects console", "data-testid": "projects" }, h("li", {}, t("moderation.loading")));
  const pager = projectPager("/api/admin/spaces", projects, () => renderList());

  function item(p) {
    return h("li", { class: `project${p.closed ? " closed" : ""}`, "data-project": p.id, "data-slug": p.slug },
      h("h3", {}, p.name, p.closed ? h("span", { class: "badge" }, t("nav.closed")) : null),
      h("p", { class: "meta" }, t("platform.slug", { slug: p.slug }), " · ", t("platform.members", { n: p.members }),
        p.created_at ? ` · ${t("platform.created", { date: formatDate(p.created_at) })}` : ""),
      p.description ? h("p", { class: "description" }, p.description) : null,
      h("p", { class: "meta" }, t("platform.teacher_admins", { names: teacherAdmins(p) })),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "secondary", "data-action": "rename", onclick: () => rename(p) }, t("platform.rename")),
        h("button", { type: "button", class: "secondary", "data-action": p.closed ? "reopen" : "close", onclick: () => setClosed(p, !p.closed) },
          t(p.closed ? "platform.reopen" : "platform.close")),
        h("button", { type: "button", class: "secondary", "data-action": "place", onclick: () => place(p) }, t("platform.place"))));
  }

  function renderList() {
    const items = [...projects.values()].sort((a, b) => b.id - a.id).map(item);
    replace(list, items.length ? items : h("li", { class: "empty" }, t("platform.none")));
    if (pager.more) list.appendChild(h("li", {}, h("button", { type: "button", class: "secondary", onclick: pager.load }, t("platform.more"))));
  }

  const reload = () => pager.restart();

  async function create() {
    const answer = await dialog({
      title: t("platform.create"), confirm: t("platform.create_confirm"), testid: "create-dialog",
      fields: [
        field(t("platform.name"), "name", { required: true, maxlength: 200 }),
        field(t("platform.slug_label"), "slug", { required: true, pattern: "[a-z0-9][a-z0-9\\-]{1,62}", "aria-describedby": "slug-hint", autocapitalize: "none", spellcheck: "false" }),
        h("p", { class: "hint", id: "slug-hint" }, t("platform.slug_hint")),
        field(t("platform.description"), "description", { multiline: true, maxlength: 2000 }),
        field(t("platform.admin"), "admin", { required: true, maxlength: 64, "aria-describedby": "admin-hint", autocapitalize: "none", spellcheck: "false" }),
        h("p", { class: "hint", id: "admin-hint" }, t("platform.admin_hint")),
      ],
    });
    if (answer === null) return;
    try {
      const made = await api("POST", "/api/admin/spaces", {
        slug: answer.slug.trim(), name: answer.name, description: answer.description, admin: answer.admin.trim(),
      });
      toast(t("platform.created_ok", { name: made.space.name, admin: made.admin.name }));
      await reload();
    } catch (err) {
      fail(err);
    }
  }

  async function rename(p) {
    const answer = await dialog({
      title: t("platform.rename_title", { name: p.name }), confirm: t("platform.rename"), testid: "rename-dialog",
      fields: [
        field(t("platform.name"), "name", { required: true, maxlength: 200, value: p.name }),
        field(t("platform.description"), "description", { multiline: true, maxlength: 2000, value: p.description || "" }),
      ],
    });
    if (answer === null) return;
    try {
      const done = await api("PATCH", `/api/admin/spaces/${p.id}`, { name: answer.name, description: answer.description });
      projects.set(p.id, { ...p, ...done.space });
      renderList();
      toast(done.changed ? t("platform.renamed") : t("platform.unchanged"));
    } catch (err) {
      fail(err);
    }
  }

  async function setClosed(p, closed) {
    if (closed && !(await confirmed(t("platform.close_title", { name: p.name }), t("platform.close_text"), t("platform.close")))) return;
    try {
      const done = await api("POST", `/api/spaces/${p.id}/${closed ? "close" : "reopen"}`);
      projects.set(p.id, { ...p, closed: done.closed });
      renderList();
      toast(t(done.closed ? "platform.closed_ok" : "platform.reopened_ok", { name: p.name }));
    } catch (err) {
      fail(err);
    }
  }

  async function closeAll() {
    if (!(await confirmed(t("platform.close_all"), t("platform.close_all_text"), t("platform.close_all")))) return;
    try {
      const done = await api("POST", "/api/admin/spaces/close");
      toast(t("platform.closed_all", { n: done.count }));
      await reload();
    } catch (err) {
      fail(err);
    }
  }

  async function place(p) {
    const answer = await dialog({
      title: t("platform.place_title", { name: p.name }), confirm: t("platform.place"), testid: "place-dialog",
      fields: [h("p", { class: "hint" }, t("platform.place_hint")),
        field(t("platform.moderator_username"), "username", { required: true, maxlength: 64, autocapitalize: "none", spellcheck: "false" })],
    });
    if (answer === null) return;
    try {
      await api("POST", `/api/admin/spaces/${p.id}/moderators`, { username: answer.username.trim() });
      toast(t("platform.placed", { username: answer.username.trim(), name: p.name }));
      await reload();
    } catch (err) {
      fail(err);
    }
  }

  return {
    el: h("section", { class: "platform-view", "data-testid": "platform" },
      h("h1", {}, t("platform.admin_title")),
      h("p", { class: "intro" }, t("platform.admin_intro")),
      h("div", { class: "actions" },
        h("button", { type: "button", "data-action": "create", onclick: create }, t("platform.create")),
        h("button", { type: "button", class: "danger", "data-action": "close-all", onclick: closeAll }, t("platform.close_all"))),
      h("h2", {}, t("platform.projects")),
      list),
    start: pager.load,
  };
}
