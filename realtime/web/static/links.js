// Links in what people write (journal entries, comments), made clickable safely: only http and
// https addresses become links, each built with h() (never parsed as HTML), opening without
// handing this page to the other site (noopener), without telling it where the reader came from
// (noreferrer) and without vouching for it (nofollow). Anything else stays text.

import { h } from "./dom.js";

const ADDRESS = /\bhttps?:\/\/[^\s<>"']+/gi;
const TRAILING = /[.,;:!?)\]}»”’]+$/; // "see https://x.example/a." — the dot ends the sentence

// The address as the browser reads it, if it is http(s); null otherwise.
export function safeUrl(text) {
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

export function externalLink(url, label, attrs = {}) {
  const href = safeUrl(url);
  if (!href) return label ?? url;
  return h("a", { href, rel: "noopener noreferrer nofollow", class: "external", ...attrs }, label ?? url);
}

// The text as text nodes and links: [string | <a>, …].
export function linkified(text) {
  const parts = [];
  let at = 0;
  for (const found of String(text ?? "").matchAll(ADDRESS)) {
    let address = found[0];
    const tail = address.match(TRAILING)?.[0] || "";
    address = address.slice(0, address.length - tail.length);
    if (found.index > at) parts.push(text.slice(at, found.index));
    parts.push(externalLink(address, address));
    at = found.index + address.length;
  }
  if (at < String(text ?? "").length) parts.push(String(text).slice(at));
  return parts;
}
