// A project's most recent activity, live.

import { api, h, replace } from "../dom.js";
import { formatTime, t } from "../i18n.js";
import { state } from "../state.js";
import { fail } from "../ui.js";

export function feedView(space) {
  const live = state.live;
  const list = h("ol", { class: "feed", "aria-live": "polite", "data-testid": "feed" });
  const channel = `feed:${space.id}`;

  function line(a) {
    const vars = { actor: a.actor?.name || "TwinHub", room: a.room?.name || "", user: a.user?.name || "", kind: a.kind };
    const key = `kind.${a.kind}`;
    const text = t(key, vars) === key ? t("kind.other", vars) : t(key, vars);
    return h("li", {}, h("time", { datetime: a.created_at }, formatTime(a.created_at)), " ", text);
  }

  const view = {
    el: h("section", { class: "feed-view" }, h("h1", {}, t("nav.feed"), " — ", space.name), list),
    async start() {
      try {
        const page = await api("GET", `/api/spaces/${space.id}/activity?limit=50`);
        replace(list, page.activities.length ? page.activities.map(line) : h("li", {}, t("feed.empty")));
        await live.subscribe(channel, page.head);
      } catch (err) {
        fail(err);
      }
    },
    dispose: () => live.unsubscribe(channel),
    onEvent(e) {
      if (e.channel === channel) list.insertBefore(line(e), list.firstChild);
    },
  };
  return view;
}
