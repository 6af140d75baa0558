// A project's moderation queue, live: open reports, and what a moderator does with each.

import { h, replace } from "../dom.js";
import { t } from "../i18n.js";
import { state } from "../state.js";
import { fail } from "../ui.js";

export function moderationView(space) {
  const live = state.live;
  const list = h("ul", { class: "reports", "aria-live": "polite", "data-testid": "reports" });
  const channel = space.moderation;

  function item(r) {
    const m = r.message;
    return h("li", { class: `report ${r.status}`, "data-report": r.id },
      h("p", {}, h("strong", {}, t(`moderation.status.${r.status}`)), " · ", t("moderation.reported_by", { name: r.reporter.name }),
        r.note ? ` — “${r.note}”` : ""),
      m ? h("blockquote", {}, h("span", { class: "author" }, m.author.name), " (", t(`area.${m.room.area}`), "): ", m.text ?? t("message.deleted"))
        : h("p", {}, t("moderation.mail_report")),
      r.status === "open" ? h("div", { class: "actions" },
        m && m.state === "visible" ? h("button", { type: "button", "data-action": "hide", onclick: () => act({ type: "hide", channel: `room:${m.room.id}`, id: m.id, reason: r.note || "reported" }) }, t("action.hide")) : null,
        h("button", { type: "button", "data-action": "resolve", onclick: () => act({ type: "resolve_report", id: r.id, outcome: "resolved", note: "" }) }, t("moderation.resolve")),
        h("button", { type: "button", "data-action": "dismiss", onclick: () => act({ type: "resolve_report", id: r.id, outcome: "dismissed", note: "" }) }, t("moderation.dismiss")),
      ) : null);
  }

  async function act(frame) {
    try {
      await live.request(frame);
      refresh();
    } catch (err) {
      fail(err);
    }
  }

  async function refresh() {
    try {
      const page = await live.request({ type: "reports", space: space.id, status: "open" });
      replace(list, page.reports.length ? page.reports.map(item) : h("li", {}, t("moderation.empty")));
    } catch (err) {
      fail(err);
    }
  }

  return {
    el: h("section", { class: "moderation-view" }, h("h1", {}, t("nav.moderation"), " — ", space.name), list),
    async start() {
      await live.subscribe(channel).catch(fail);
      refresh();
    },
    dispose: () => live.unsubscribe(channel),
    onEvent(e) {
      if (e.channel === channel) refresh();
    },
  };
}
