// Start (#/home): where to go. Per project its name and one's role there, the rooms one may
// write in first (the `post` right), then those one may comment in (`comment`: replies to what
// is there, as a pupil in the journal or a parent in the activities), then those one reads; the
// unread mail; the invitations waiting for an answer, live (the `invitation` frame); and for
// someone in no project yet, what happens next.

import { api, h, replace } from "../dom.js";
import { formatDate, t } from "../i18n.js";
import { state } from "../state.js";
import { confirmed, fail, toast } from "../ui.js";

const ROLES = ["teacher_admin", "teacher_member", "pupil_admin", "pupil_member", "visitor"];

function roleName(role) {
  return ROLES.includes(role) ? t(`home.role.${role}`) : role;
}

// An invitation told while another screen is open: a notice, so that it is not missed.
export function noteInvitation(frame) {
  const inv = frame.invitation;
  if (inv?.status !== "pending" || state.view?.isHome) return;
  toast(t("home.invited_toast", { name: inv.invited_by?.name || "", project: inv.space?.name || "" }));
}

export function homeView() {
  const view = { el: h("section", { class: "home", "data-testid": "home", "aria-labelledby": "home-title" }), isHome: true };
  const invitations = new Map(); // id -> pending invitation, newest first when shown

  function invitationItem(inv) {
    const textId = `invitation-${inv.id}-text`;
    const answer = async (accept) => {
      if (!accept && !(await confirmed(t("home.decline"), t("home.decline_confirm", { project: inv.space.name }), t("home.decline"), { danger: false }))) return;
      try {
        await api("POST", `/api/invitations/${inv.id}/${accept ? "accept" : "decline"}`);
        invitations.delete(inv.id);
        toast(accept ? t("home.joined", { project: inv.space.name }) : t("home.declined", { project: inv.space.name }));
        renderInvitations();
        (invitationsEl.querySelector("button") || projectsEl.querySelector("h2"))?.focus(); // not lost on the page
      } catch (err) {
        if (err.code === "not_found" || err.code === "conflict") { // answered elsewhere, withdrawn, expired
          invitations.delete(inv.id);
          renderInvitations();
        }
        fail(err);
      }
    };
    return h("li", { class: "invitation", "data-invitation": inv.id },
      h("p", { id: textId },
        t("home.invited", { name: inv.invited_by?.name || "", project: inv.space.name, role: roleName(inv.role) }),
        inv.invited_by?.school ? h("span", { class: "muted" }, ` (${inv.invited_by.school})`) : null),
      inv.note ? h("blockquote", {}, inv.note) : null,
      h("p", { class: "muted" }, t("home.expires", { date: formatDate(inv.expires_at) })),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "primary", "data-action": "accept", "aria-describedby": textId, onclick: () => answer(true) }, t("home.accept")),
        h("button", { type: "button", class: "secondary", "data-action": "decline", "aria-describedby": textId, onclick: () => answer(false) }, t("home.decline"))));
  }

  function roomLink(room) {
    return h("li", {}, h("a", { class: "link", href: `#/room/${room.id}`, "data-channel": room.channel },
      room.kind === "journal" ? room.name : `# ${room.name}`, " ", h("span", { class: "area" }, t(`area.${room.area}`))));
  }

  function project(space) {
    const usable = space.rooms.filter((r) => !r.archived);
    const writable = space.closed ? [] : usable.filter((r) => r.rights.includes("post"));
    const commentable = space.closed ? [] : usable.filter((r) => !writable.includes(r) && r.kind === "journal" && r.rights.includes("comment"));
    const readable = usable.filter((r) => !writable.includes(r) && !commentable.includes(r));
    const contributes = writable.length + commentable.length > 0;
    const unread = space.mailbox?.unread?.inbox || 0;
    const titleId = `home-space-${space.id}`;
    return h("article", { class: "home-project", "data-space": space.id, "aria-labelledby": titleId },
      h("h3", { id: titleId }, space.name, space.closed ? h("span", { class: "badge" }, t("nav.closed")) : null),
      h("p", { class: "role" }, t("home.your_role", { role: roleName(space.role) })),
      space.closed ? h("p", {}, t("home.closed")) : null,
      writable.length ? [h("h4", {}, t("home.write_here")), h("ul", { class: "rooms write" }, writable.map(roomLink))] : null,
      commentable.length ? [h("h4", {}, t("home.comment_here")), h("ul", { class: "rooms comment" }, commentable.map(roomLink))] : null,
      readable.length ? [h("h4", {}, contributes ? t("home.read_too") : t("home.read_here")), h("ul", { class: "rooms read" }, readable.map(roomLink))] : null,
      h("ul", { class: "shortcuts" },
        space.mailbox ? h("li", {}, h("a", { class: "link", href: `#/mail/${space.id}`, "data-testid": "home-mail" },
          unread ? t("home.mail_unread", { n: unread }) : t("home.mail_none"))) : null,
        h("li", {}, h("a", { class: "link", href: `#/feed/${space.id}` }, t("nav.feed")))));
  }

  function nothingYet() {
    const user = state.me.user;
    if (user.platform_role === "moderator") return h("p", {}, t("home.platform_moderator"));
    if (user.platform_role === "admin") return h("p", {}, t("home.platform_admin"));
    return h("div", { class: "home-empty", "data-testid": "home-empty" },
      h("p", {}, t("home.no_project")),
      h("p", {}, t("home.no_project_adult")),
      h("p", {}, t("home.no_project_code"), " ", h("a", { href: "/join" }, t("home.join_link"))),
      h("p", {}, t("home.no_project_pupil")));
  }

  // Two parts drawn apart: an invitation coming in does not redraw (and lose the focus in) the
  // projects, nor a fresh welcome the invitation someone is answering.
  const invitationsEl = h("section", { class: "home-invitations", "aria-live": "polite", "data-testid": "invitations" });
  const projectsEl = h("section", { class: "home-projects", "data-testid": "projects" });

  function renderInvitations() {
    const pending = [...invitations.values()].sort((a, b) => b.id - a.id);
    replace(invitationsEl, pending.length
      ? [h("h2", {}, t("home.invitations")), h("ul", { class: "invitations" }, pending.map(invitationItem))] : null);
  }

  function renderProjects() {
    const spaces = state.me.spaces;
    replace(projectsEl, h("h2", { tabindex: "-1" }, t("home.projects")), spaces.length ? spaces.map(project) : nothingYet());
  }

  function render() {
    replace(view.el, h("h1", { id: "home-title" }, t("home.title", { name: state.me.user.name })), invitationsEl, projectsEl);
    renderInvitations();
    renderProjects();
  }

  view.render = render;
  view.rightsChanged = renderProjects; // a fresh welcome: a project joined or left, rooms, rights
  view.start = async () => {
    try {
      const found = await api("GET", "/api/invitations");
      for (const inv of found.invitations) invitations.set(inv.id, inv);
    } catch (err) {
      fail(err);
    }
    renderInvitations();
  };
  view.onFrame = (frame) => {
    if (frame.type !== "invitation") return;
    const inv = frame.invitation;
    if (inv.status === "pending") invitations.set(inv.id, inv);
    else invitations.delete(inv.id);
    renderInvitations();
  };
  // Unread counts come as mailbox events (app.js has already counted them in).
  view.onEvent = (frame) => {
    if (frame.channel.startsWith("mail:") && frame.unread) renderProjects();
  };
  render();
  return view;
}
