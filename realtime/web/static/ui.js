// What every screen shows the same way: passing notices (toasts), errors in the user's language,
// and modal dialogs — native <dialog>s, which hold the keyboard's focus and close on Escape —
// never window.prompt().

import { h } from "./dom.js";
import { errorText, t } from "./i18n.js";

let toasts = null;

export function setToasts(el) {
  toasts = el;
}

const MAX_TOASTS = 3; // older ones go: a burst of notices never covers the screen

export function toast(text, { ms = 6000 } = {}) {
  if (!toasts) return;
  const item = h("p", {}, text);
  toasts.appendChild(item);
  while (toasts.childElementCount > MAX_TOASTS) toasts.firstElementChild.remove();
  setTimeout(() => item.remove(), ms);
}

// The form an error answers: the one submitted last, if that was a moment ago and it is still on
// screen (its button may have been disabled meanwhile, taking the focus away), else the one that
// holds the focus.
let submitted = { form: null, at: 0 };
document.addEventListener("submit", (ev) => { submitted = { form: ev.target, at: Date.now() }; }, true);

function answeredForm() {
  const recent = submitted.form?.isConnected && Date.now() - submitted.at < 30000 ? submitted.form : null;
  const form = recent || document.activeElement?.closest?.("form");
  return form && !form.closest("dialog:not([open])") ? form : null;
}

// An error is announced (a toast, read out by screen readers) and, when it answers a form the
// user is in, also written under that form, where they are looking, until they change it.
export function fail(err) {
  const text = errorText(err);
  toast(text, { ms: 10000 });
  const form = answeredForm();
  if (!form) return;
  let line = form.querySelector(":scope > .form-error");
  if (!line) {
    line = h("p", { class: "form-error", "data-testid": "form-error" });
    form.appendChild(line);
    form.addEventListener("input", () => { line.textContent = ""; });
  }
  line.textContent = text;
}

// A modal form. `fields` are elements (labelled inputs, text); resolves with the form's values
// keyed by name when confirmed, null when cancelled.
export function dialog({ title, fields = [], confirm = t("dialog.ok"), danger = false, testid, cancel = true }) {
  return new Promise((resolve) => {
    const form = h("form", { method: "dialog" },
      h("h2", { id: "dialog-title" }, title),
      fields,
      h("div", { class: "dialog-actions" },
        cancel ? h("button", { type: "button", value: "cancel", "data-action": "cancel", onclick: () => box.close("cancel") }, t("dialog.cancel")) : null,
        h("button", { type: "submit", value: "ok", class: danger ? "danger" : "primary", "data-action": "confirm" }, confirm)));
    const box = h("dialog", { "aria-labelledby": "dialog-title", "data-testid": testid || "dialog" }, form);
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      if (!form.reportValidity()) return;
      box.close("ok");
    });
    box.addEventListener("close", () => {
      const values = box.returnValue === "ok" ? Object.fromEntries(new FormData(form).entries()) : null;
      box.remove();
      resolve(values);
    });
    document.body.appendChild(box);
    box.showModal();
    // A field to fill gets the focus, its text selected (a rename types over the old name); a
    // dialog that destroys something with no field to fill starts on Cancel, so that a stray
    // Enter destroys nothing.
    const first = form.querySelector("input, textarea, select");
    if (first) {
      first.focus();
      first.select?.();
    } else {
      form.querySelector(danger && cancel ? "[data-action=cancel]" : "[data-action=confirm]").focus();
    }
  });
}

// Asks before doing something that cannot be undone: resolves true when confirmed.
export async function confirmed(title, text, confirm, { danger = true } = {}) {
  return (await dialog({ title, fields: [h("p", {}, text)], confirm, danger, testid: "confirm" })) !== null;
}

// A labelled field for a dialog: {label, name, type, value, required, max, ...attrs}.
export function field(label, name, { multiline = false, ...attrs } = {}) {
  const id = `field-${name}`;
  const { value, ...rest } = attrs;
  // A required one-line field must hold more than spaces (the server trims them away).
  const pattern = rest.required && !multiline && !rest.type ? ".*\\S.*" : undefined;
  const input = multiline
    ? h("textarea", { id, name, rows: 3, ...rest }, value ?? "")
    : h("input", { id, name, value, pattern, ...rest });
  return h("div", { class: "field" }, h("label", { for: id }, label), input);
}
