// The page's words. Each language is a JSON catalogue in locales/<tag>.json, keyed like English
// (the source); languages.json (beside this file) lists them, each by its own name. The page never shows a
// server message as is when it knows the error code: `error.<code>` says it in the user's
// language (the server's English text is the fallback for a code no catalogue knows).

const catalogues = {}; // tag -> {key: text}
let languages = { en: "English" }; // tag -> its own name
let lang = "en";

async function fetchJson(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

async function catalogue(tag) {
  if (!catalogues[tag]) catalogues[tag] = await fetchJson(`/static/locales/${tag}.json`);
  return catalogues[tag];
}

// The first of the reader's choice (kept on this browser), then the browser's languages, that
// the page has; English otherwise.
// Tags a browser may send for a language the page has under another: Norwegian Bokmål and
// Nynorsk read the Norwegian catalogue.
const SAME_AS = { nb: "no", nn: "no" };

function preferred() {
  const wanted = [localStorage.getItem("twinhub.lang"), ...(navigator.languages || [navigator.language])];
  for (const tag of wanted.filter(Boolean)) {
    if (tag in languages) return tag;
    const base = tag.split("-")[0].toLowerCase();
    if ((SAME_AS[base] || base) in languages) return SAME_AS[base] || base;
  }
  return "en";
}

export async function loadLanguages() {
  languages = await fetchJson("/static/languages.json");
  // One catalogue, the reader's own: each is complete (tests/test_catalogues.py fails on a key
  // one lacks), so a Polish pupil never downloads the English words too.
  await setLang(preferred(), { remember: false });
}

export function getLang() {
  return lang;
}

// The locale dates, times and numbers are written in: the browser's own variant of the page's
// language when it has one (en-GB writes 14:05 and 7 December, en-US 2:05 PM and December 7),
// the language itself otherwise.
export function locale() {
  const own = (navigator.languages || [navigator.language]).find((tag) => tag && tag.split("-")[0] === lang);
  return own || lang;
}

export function languageNames() {
  return languages;
}

// Languages written right to left: the whole page turns (dir="rtl"; style.css uses logical
// properties throughout, so margins, borders and arrows follow).
const RIGHT_TO_LEFT = new Set(["ar", "fa", "he", "ur"]);

export function direction(tag) {
  return RIGHT_TO_LEFT.has(tag.split("-")[0]) ? "rtl" : "ltr";
}

export async function setLang(next, { remember = true } = {}) {
  lang = next in languages ? next : "en";
  await catalogue(lang);
  if (remember) localStorage.setItem("twinhub.lang", lang);
  document.documentElement.lang = lang;
  document.documentElement.dir = direction(lang);
}

// At logout: the next person at a shared computer starts in the browser's languages, and gets
// their own (kept by the server) when they log in.
export async function forgetLang() {
  localStorage.removeItem("twinhub.lang");
  await setLang(preferred(), { remember: false });
}

// Words in another language than the page's: a login sheet printed in the class's language.
export async function wordsIn(tag) {
  const target = tag in languages ? tag : "en";
  await catalogue(target);
  return (key, vars = {}) => say(target, key, vars);
}

// People's names in the order of the reader's language (Polish "Łucja" between "Lena" and "Maja",
// Swedish "Östen" after "Zack"), not by code point (which puts every "Ł" after "Z").
export function byName(a, b) {
  return collator().compare(a, b);
}

function collator() {
  return formatter(Intl.Collator, { sensitivity: "base", numeric: true });
}

// A counted phrase is an object of CLDR plural forms ({"one": …, "few": …, "other": …}); the count
// `n` picks the form by the language's own rules (Polish 2 pliki, 5 plików; Arabic's six forms).
function form(text, vars, tag = lang) {
  if (typeof text === "string") return text;
  const n = Number(vars.n);
  return text[formatter(Intl.PluralRules, {}, tag).select(Number.isFinite(n) ? n : 0)] ?? text.other;
}

function say(tag, key, vars) {
  const text = form(catalogues[tag]?.[key] ?? catalogues.en?.[key] ?? key, vars, tag);
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in vars ? formatValue(name, vars[name]) : `{${name}}`));
}

export function t(key, vars = {}) {
  return say(lang, key, vars);
}

// Counts in the language's own digits and separators (1 234 in French, 1.234 in German); an id
// is a name, not a quantity ("Project 1234").
function formatValue(name, value) {
  if (typeof value !== "number" || name === "id") return String(value);
  return formatter(Intl.NumberFormat, {}).format(value);
}

// "Ann, Bob and Carl" in the language's own way ("Ann, Bob et Carl", "Ann, Bob und Carl").
export function formatList(items) {
  return formatter(Intl.ListFormat, { style: "long", type: "conjunction" }).format(items.map(String));
}

export function has(key) {
  return key in (catalogues[lang] || {}) || key in (catalogues.en || {});
}

export function errorText(error) {
  const key = `error.${error.code}`;
  if (has(key)) {
    const until = error.until ? formatDateTime(error.until) : "";
    return t(key, { until });
  }
  return error.message || t("error.internal");
}

// Intl's formatters, one per locale and kind, kept: making one costs some 20 µs, using it ~1 µs,
// and a room of 300 messages writes 300 times.
const formatters = new Map();
function formatter(Kind, options, tag = locale()) {
  const key = `${Kind.name}|${tag}|${JSON.stringify(options)}`;
  if (!formatters.has(key)) formatters.set(key, made(Kind, options, tag));
  return formatters.get(key);
}

// A browser may have no data for the language: Chromium carries it for its own interface's
// languages only (not Irish, Icelandic, Georgian, Macedonian, Maltese or Albanian), and falls back
// to American English ("Dec 7, 2026, 2:05 PM"). Such a reader gets forms every European reads
// instead: numeric dates, a 24-hour clock, unit symbols, names joined by commas.
function made(Kind, options, tag) {
  if (Kind.supportedLocalesOf([tag]).length) return new Kind(tag, options);
  if (Kind === Intl.DateTimeFormat) return new Kind("en-GB", numeric(options));
  if (Kind === Intl.NumberFormat && options.style === "unit") return new Kind("en-GB", { ...options, unitDisplay: "narrow" });
  if (Kind === Intl.ListFormat) return { format: (items) => items.join(", ") };
  return new Kind(tag, options);
}

function numeric(options) {
  const date = ["dateStyle", "weekday", "day", "month", "year"].some((k) => k in options);
  const time = ["timeStyle", "hour", "minute"].some((k) => k in options);
  return {
    ...(date ? { day: "2-digit", month: "2-digit", ...("year" in options || "dateStyle" in options ? { year: "numeric" } : {}) } : {}),
    ...(time ? { hour: "2-digit", minute: "2-digit", hourCycle: "h23" } : {}),
  };
}

export function dateWith(options, iso, tag) {
  return iso ? formatter(Intl.DateTimeFormat, options, tag).format(new Date(iso)) : "";
}

export function formatTime(iso) {
  return dateWith({ hour: "2-digit", minute: "2-digit" }, iso);
}

export function formatDate(iso) {
  return dateWith({ weekday: "long", day: "numeric", month: "long", year: "numeric" }, iso);
}

export function formatDateTime(iso) {
  return dateWith({ dateStyle: "medium", timeStyle: "short" }, iso);
}

// A wait, in words: "45 seconds", "5 minutes" (rounded up: nobody is told to come back too soon).
export function formatDuration(ms) {
  const seconds = Math.max(1, Math.ceil(ms / 1000));
  const [n, unit] = seconds < 90 ? [seconds, "second"] : [Math.ceil(seconds / 60), "minute"];
  return formatter(Intl.NumberFormat, { style: "unit", unit, unitDisplay: "long" }).format(n);
}

// A date in a given language (a card printed in the class's language, not the teacher's).
export function formatDateIn(tag, iso) {
  return dateWith({ day: "numeric", month: "long", year: "numeric" }, iso, tag);
}

// A date without the weekday ("7 Dec 2026", "7 déc. 2026"): for lists, where the long form is noise.
export function formatShortDate(iso) {
  return dateWith({ dateStyle: "medium" }, iso);
}

// Two names that say the same to a reader ("pupils_corner" and "Pupils' corner"): a room named
// after its area is not followed by the area's name.
export function sameName(a, b) {
  const fold = (x) => x.toLocaleLowerCase().replace(/[\s_'’-]+/g, "");
  return fold(a) === fold(b);
}
