// The shopper's page: search by words, a photo or both (words and pictures, pictures or
// words alone), or browse in a sort order; typeahead; filters with counts for the shop's own
// attributes (GET /v1/schema); more like this.

import { ApiError, api } from "./api.js";
import { card } from "./results.js";
import { attributeLabel, loadSchema, sortLabel, valueLabel } from "./schema.js";
import { setUpTypeahead } from "./typeahead.js";
import { alertBox, el, setUpKeyDialog } from "./ui.js";

const PAGE_SIZE = 24;
const FACET_VALUES_SHOWN = 8;
const MODES = ["hybrid", "semantic", "keyword"];  // words + pictures, pictures, words
const DIVERSITY = 0.5;  // "fewer look-alikes"
// Parameters of the page's address that are no facet filter.
const RESERVED = new Set(["q", "negative", "min_score", "similar", "sort", "price_min",
                          "price_max", "mode", "diversity"]);
// Suggestions of these kinds set the filter of that name when the shop facets it.
const SUGGESTION_FILTERS = ["brand", "category"];
const CUTOFF_HELP_WORDS = "Searching by words alone: the cutoff holds again when you "
  + "search by pictures or by words + pictures.";

const $ = (id) => document.getElementById(id);
const ui = {
  form: $("search-form"), q: $("q"), photo: $("photo"), dropZone: $("drop-zone"),
  preview: $("photo-preview"), thumb: $("photo-thumb"), photoName: $("photo-name"),
  photoClear: $("photo-clear"), alpha: $("alpha"), alphaValue: $("alpha-value"),
  negative: $("negative"), filters: $("filters"), filtersToggle: $("filters-toggle"),
  filtersClear: $("filters-clear"), minScore: $("min-score"), minScoreValue: $("min-score-value"),
  minScoreHelp: $("min-score-help"), mode: $("mode"), diverse: $("diverse"),
  suggestions: $("q-suggestions"),
  priceRange: $("price-range"), priceMin: $("price-min"), priceMax: $("price-max"),
  facets: $("facets"), sort: $("sort"),
  similarBanner: $("similar-banner"), similarHeading: $("similar-heading"),
  similarBack: $("similar-back"), status: $("status"), empty: $("empty"), results: $("results"),
  sentinel: $("sentinel"), loadMore: $("load-more"),
};
const errorBox = alertBox($("error"));
const cutoffHelp = ui.minScoreHelp.textContent;

const state = {
  q: "",
  photo: null,
  alpha: 0.4,
  negative: "",
  filters: new Map(),  // facetable attribute -> the values chosen (any of them)
  priceMin: "",
  priceMax: "",
  minScore: 0,
  sort: "",  // the shopper's choice; "" is relevance with a query, newest without
  mode: "hybrid",  // how words are searched: MODES
  diverse: false,  // fewer look-alikes (MMR); such results page by offset
  similar: null,  // {id, title}: "more like this" mode
  next: {},  // where the next page starts: {} first, then {cursor} or {offset}; null at the end
  seen: new Set(),  // product ids shown: a page never repeats one
  total: null,
  loading: false,
  generation: 0,  // bumps on every new search; late answers of older ones are dropped
  facetGeneration: 0,
  expanded: new Set(),  // facet fields showing all their values
};

let schema = null;  // GET /v1/schema once it answers; the page offers less without it
const schemaReady = loadSchema().then((answer) => {
  schema = answer;
  ui.priceRange.hidden = Boolean(schema) && !schema.attributes.some(
    (a) => a.name === "price" && a.filterable && a.type === "number");
  renderSort();
  return schema;
});

const facetable = () => (schema ? schema.attributes.filter((a) => a.facetable) : []);
const chosen = (field) => state.filters.get(field) || new Set();

// ---- what is asked -------------------------------------------------------------------------

function filterParams(except) {
  const params = {};
  for (const [field, values] of state.filters) {
    if (field !== except && values.size) params[field] = [...values];
  }
  if (state.priceMin !== "") params.price_min = state.priceMin;
  if (state.priceMax !== "") params.price_max = state.priceMax;
  return params;
}

/** Words or a photo to rank by; without them (and outside "more like this") the page browses. */
const querying = () => Boolean(state.q || state.photo);
const browsing = () => !querying() && !state.similar;

/**
 * How the words are searched, as the API is asked: a photo always counts (words alone
 * would drop it), so "words" with a photo is words + pictures. Null without words.
 */
function modeParam() {
  if (!state.q || state.similar) return null;
  return state.photo && state.mode === "keyword" ? "hybrid" : state.mode;
}

// The cutoff is a cosine on the photo side in every mode, but the API can't apply it to a
// search by words alone yet (a 500), so there it waits.
const cutoffApplies = () => !browsing() && modeParam() !== "keyword";
const minScoreParam = () => (state.minScore > 0 && cutoffApplies() ? state.minScore : null);

/** Relevance order of a query: the order where look-alikes can be thinned out. */
const diversityParam = () => (state.diverse && querying() && !state.similar
                              && currentSort() === "relevance" ? DIVERSITY : null);

/**
 * The "match" a card shows: a cosine between the search and the product's photo, the one
 * figure a shopper can read (and the scale of the cutoff). Semantic scores and "more like
 * this" are such cosines; a hybrid score is a fused rank, so hybrid searches ask the API to
 * explain and show its photo-side cosine; words alone have none.
 */
function matchOf(result) {
  if (currentSort() !== "relevance") return null;
  if (result.explain?.exact) return "exact";
  if (typeof result.explain?.dense === "number") return result.explain.dense;
  return state.similar || modeParam() === "semantic" || (!state.q && state.photo)
    ? result.score : null;
}

const filtersActive = () => [...state.filters.values()].some((values) => values.size)
  || state.priceMin !== "" || state.priceMax !== "";

/** The sort orders on offer: relevance only for a query; "more like this" has no other. */
function sortOrders() {
  if (state.similar) return ["relevance"];
  const all = schema ? schema.sort : ["relevance", "newest"];
  return querying() ? all : all.filter((order) => order !== "relevance");
}

function currentSort() {
  const orders = sortOrders();
  if (state.sort && (orders.includes(state.sort) || (!schema && state.sort !== "relevance"))) {
    return state.sort;
  }
  return orders[0];
}

function append(form, params) {
  for (const [name, value] of Object.entries(params)) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v !== null && v !== undefined && v !== "") form.append(name, v);
    }
  }
}

// A cursor rather than an offset where the API gives one: products added or removed above
// it while the shopper scrolls shift offsets, which would skip some; the cursor carries on
// after the last one. Diverse results (fewer look-alikes) have no cursor and page by offset.
function requestPage(next) {
  const filters = filterParams();
  const paging = { min_score: minScoreParam(), limit: PAGE_SIZE, ...next };
  if (state.similar) {
    return api(`/v1/products/${encodeURIComponent(state.similar.id)}/similar`,
               { params: { ...filters, ...paging } });
  }
  const sort = currentSort();
  const mode = modeParam();
  const how = { sort, mode, diversity: diversityParam(),
                explain: mode === "hybrid" && sort === "relevance" ? "true" : null };
  if (!state.photo && !(state.q && state.negative)) {
    return api("/v1/search", { params: { q: state.q, ...how, ...filters, ...paging } });
  }
  // A photo or "less of" needs the form; filters stay in the query string, where every
  // attribute of the shop's is one.
  const form = new FormData();
  if (state.q) form.append("q", state.q);
  if (state.photo) {
    form.append("image", state.photo);
    form.append("alpha", state.q ? state.alpha : 1);
  }
  if (state.negative) form.append("negative", state.negative);
  append(form, { ...how, ...paging });
  return api("/v1/search", { method: "POST", form, params: filters });
}

// ---- searching and paging ------------------------------------------------------------------

async function search() {
  state.generation += 1;
  state.next = {};
  state.seen.clear();
  state.loading = false;
  state.total = null;
  ui.results.replaceChildren();
  ui.empty.hidden = true;
  ui.loadMore.hidden = true;
  errorBox.hide();
  saveToURL();
  const active = [...state.filters.values()].reduce((n, values) => n + values.size, 0)
    + (state.priceMin !== "" || state.priceMax !== "" ? 1 : 0) + (minScoreParam() ? 1 : 0);
  ui.filtersToggle.textContent = active ? `Filters (${active})` : "Filters";
  renderSort();
  renderMode();
  refreshFacets();
  // User Timing marks for searches (bench/pages.py reads them); browsing sets none.
  if (!browsing()) performance.mark("vitrine:search");
  await loadPage();
}

async function loadPage() {
  if (state.loading || state.next === null) return;
  const generation = state.generation;
  const firstPage = state.next.cursor === undefined && state.next.offset === undefined;
  state.loading = true;
  ui.results.setAttribute("aria-busy", "true");
  document.body.classList.add("busy");
  try {
    const body = await requestPage(state.next);
    if (generation !== state.generation) return;
    const fresh = body.results.filter((r) => !state.seen.has(r.product_id));
    for (const r of fresh) state.seen.add(r.product_id);
    ui.results.append(...fresh.map((r) => card(r, { match: matchOf(r),
                                                    onSimilar: showSimilar })));
    state.next = body.next_cursor ? { cursor: body.next_cursor }
      : typeof body.next_offset === "number" ? { offset: body.next_offset } : null;
    if (state.seen.size === 0) showEmpty();
    updateStatus();
    if (firstPage && !browsing()) performance.mark("vitrine:results");
  } catch (err) {
    if (generation !== state.generation) return;
    showError(err);
  } finally {
    if (generation === state.generation) {
      state.loading = false;
      ui.results.setAttribute("aria-busy", "false");
      document.body.classList.remove("busy");
      ui.loadMore.hidden = state.next === null || state.seen.size === 0;
      // Re-observing reports the sentinel again if it is still in view (a tall screen).
      scrollObserver.unobserve(ui.sentinel);
      scrollObserver.observe(ui.sentinel);
    }
  }
}

const scrollObserver = new IntersectionObserver((entries) => {
  if (entries.some((e) => e.isIntersecting) && state.seen.size && state.next !== null) {
    loadPage();
  }
}, { rootMargin: "600px 0px" });

// ---- facets --------------------------------------------------------------------------------

/**
 * Counts per value under the query and the other filters. A field with a selection is
 * counted without its own filter, so its other values stay visible and can be added.
 */
async function refreshFacets() {
  const generation = ++state.facetGeneration;
  const textual = !state.photo && !state.similar;
  const base = textual ? { q: state.q, min_score: minScoreParam(), mode: modeParam() } : {};
  const selected = [...state.filters.keys()].filter((f) => chosen(f).size);
  try {
    const [, all, ...own] = await Promise.all([
      schemaReady,
      api("/v1/facets", { params: { ...base, ...filterParams() } }),
      ...selected.map((f) => api("/v1/facets", { params: { ...base, ...filterParams(f) } })),
    ]);
    if (generation !== state.facetGeneration) return;
    const counts = { ...all.facets };
    selected.forEach((f, i) => { counts[f] = own[i].facets[f] || {}; });
    state.total = all.total;
    renderFacets(counts);
    updateStatus();
  } catch (err) {
    if (generation !== state.facetGeneration) return;
    ui.facets.replaceChildren(el("p", { class: "help", text: `Filters unavailable: ${err.message}` }));
  }
}

/** Choose or drop a facet value; a yes/no attribute holds one value at most. */
function toggleValue(attribute, value, on) {
  const values = new Set(attribute.type === "boolean" && on ? [] : chosen(attribute.name));
  if (on) values.add(value);
  else values.delete(value);
  state.filters.set(attribute.name, values);
  search();
}

function facetValue(attribute, value, count) {
  const field = attribute.name;
  const id = `facet-${field}-${encodeURIComponent(value)}`;  // stable: focus survives
  const input = el("input", {
    type: "checkbox", id, value, checked: chosen(field).has(value), dataset: { field },
    onchange: (e) => toggleValue(attribute, value, e.target.checked),
  });
  return el("li", {}, input,
            el("label", { for: id },
               el("span", { class: "facet-name", text: valueLabel(attribute, value) }),
               el("span", { class: "count" }, String(count),
                  el("span", { class: "visually-hidden", text: " products" }))));
}

function renderFacets(counts) {
  const focused = document.activeElement?.closest?.("#facets") ? document.activeElement.id : null;
  const groups = [];
  // Without the schema (it could not be read) the counts still name the attributes.
  const attributes = schema ? facetable() : Object.keys(counts).map((name) => ({ name }));
  for (const attribute of attributes) {
    const field = attribute.name;
    const values = new Map(Object.entries(counts[field] || {}));
    for (const v of chosen(field)) if (!values.has(v)) values.set(v, 0);
    if (!values.size) continue;
    const sorted = [...values].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    const expanded = state.expanded.has(field);
    const shown = expanded ? sorted : sorted.filter(([v], i) => i < FACET_VALUES_SHOWN
                                                   || chosen(field).has(v));
    const list = el("ul", { class: "facet-values" },
                    shown.map(([value, count]) => facetValue(attribute, value, count)));
    const more = sorted.length > FACET_VALUES_SHOWN
      ? el("button", {
        type: "button", class: "link", "aria-expanded": String(expanded),
        text: expanded ? "Show fewer" : `Show all ${sorted.length}`,
        onclick: () => {
          if (expanded) state.expanded.delete(field);
          else state.expanded.add(field);
          renderFacets(counts);
        },
      })
      : null;
    groups.push(el("fieldset", { class: "facet", dataset: { field } },
                   el("legend", { text: attributeLabel(attribute) }), list, more));
  }
  ui.facets.replaceChildren(...groups);
  if (focused) document.getElementById(focused)?.focus();
}

// ---- rendering -----------------------------------------------------------------------------

function renderSort() {
  const orders = sortOrders();
  const current = currentSort();
  const attributes = schema ? schema.attributes : [];
  ui.sort.replaceChildren(...orders.map((order) => el("option", {
    value: order, text: sortLabel(order, attributes), selected: order === current })));
  ui.sort.value = current;
  ui.sort.disabled = orders.length < 2;
}

/** The mode radios and "fewer look-alikes" as the search has them; what doesn't apply rests. */
function renderMode() {
  // With a photo, "words" (kept for when it goes) is searched as words + pictures.
  const shown = state.photo && state.mode === "keyword" ? "hybrid" : state.mode;
  for (const radio of ui.mode.querySelectorAll("input")) {
    radio.checked = radio.value === shown;
  }
  const words = $("mode-keyword");
  words.disabled = Boolean(state.photo);  // a photo is always searched by its pictures
  words.labels[0].title = state.photo ? "Remove the photo to search by words alone"
    : "Only products whose own words (title, brand, SKU…) match";
  ui.diverse.checked = state.diverse;
  ui.minScore.disabled = !cutoffApplies();
  ui.minScoreHelp.textContent = !browsing() && !cutoffApplies() ? CUTOFF_HELP_WORDS
    : cutoffHelp;
}

function updateStatus() {
  if (state.seen.size === 0) {
    ui.status.textContent = "";
    return;
  }
  const shown = `${state.seen.size} result${state.seen.size === 1 ? "" : "s"} shown`;
  const cut = minScoreParam() !== null && !state.photo && !state.similar;
  const matching = cut ? " above the cutoff" : filtersActive() ? " match the filters" : "";
  const total = state.total === null ? ""
    : ` · ${state.total} product${state.total === 1 ? "" : "s"}${matching}`;
  ui.status.textContent = shown + total;
}

function showEmpty() {
  const what = state.similar ? `similar to “${state.similar.title}”`
    : state.q ? `for “${state.q}”` : state.photo ? "like this photo"
      : filtersActive() ? "match the filters" : "in the catalogue yet";
  const actions = [];
  if (filtersActive()) {
    actions.push(el("button", { type: "button", class: "secondary small", text: "Clear filters",
                                onclick: clearFilters }));
  }
  if (minScoreParam() !== null) {
    actions.push(el("button", { type: "button", class: "secondary small",
                                text: "Remove the relevance cutoff",
                                onclick: () => { setMinScore(0); search(); } }));
  }
  ui.empty.className = "empty";
  ui.empty.replaceChildren(
    el("h2", { text: `No products ${what}` }),
    el("p", { text: actions.length ? "Try fewer filters or a lower relevance cutoff."
      : browsing() ? "Products show here once the catalogue has some."
        : "Try other words or another photo." }),
    actions.length ? el("p", { class: "actions-inline" }, actions) : null);
  ui.empty.hidden = false;
}

function showError(err) {
  const message = err instanceof ApiError ? err.message : `Something went wrong: ${err}`;
  const needsKey = err instanceof ApiError && (err.status === 401 || err.status === 403);
  errorBox.show(needsKey ? `Not allowed: ${message}` : `The search failed: ${message}`,
                needsKey ? { label: "Enter an API key", run: () => $("key-button").click() }
                         : null);
}

// ---- controls ------------------------------------------------------------------------------

function showSimilar(product) {
  state.similar = { id: product.id, title: product.title || product.id };
  ui.similarHeading.textContent = `More like “${state.similar.title}”`;
  ui.similarBanner.hidden = false;
  search();
  window.scrollTo({ top: 0 });
  ui.similarHeading.focus();
}

function leaveSimilar() {
  state.similar = null;
  ui.similarBanner.hidden = true;
}

function setPhoto(file) {
  if (ui.thumb.src.startsWith("blob:")) URL.revokeObjectURL(ui.thumb.src);
  state.photo = file;
  if (file) {
    ui.thumb.src = URL.createObjectURL(file);
    ui.photoName.textContent = file.name;
  } else {
    ui.thumb.removeAttribute("src");
    ui.photo.value = "";
  }
  ui.preview.hidden = !file;
  updateAlpha();
}

function updateAlpha() {
  ui.alpha.closest(".control").hidden = !state.photo;
  ui.alpha.disabled = !(state.photo && ui.q.value.trim());
  ui.alphaValue.textContent = `${Math.round(state.alpha * 100)}% photo`;
}

function setMinScore(value) {
  state.minScore = value;
  ui.minScore.value = String(value);
  ui.minScoreValue.textContent = value > 0 ? value.toFixed(2) : "off";
}

function clearFilters() {
  state.filters.clear();
  state.priceMin = state.priceMax = "";
  ui.priceMin.value = ui.priceMax.value = "";
  setMinScore(0);
  search();
}

function saveToURL() {
  const params = new URLSearchParams();
  if (state.q) params.set("q", state.q);
  if (state.negative) params.set("negative", state.negative);
  for (const [name, value] of Object.entries(filterParams())) {
    for (const v of [value].flat()) params.append(name, v);
  }
  if (minScoreParam() !== null) params.set("min_score", state.minScore);
  if (state.sort) params.set("sort", state.sort);
  if (state.mode !== "hybrid") params.set("mode", state.mode);
  if (state.diverse) params.set("diversity", DIVERSITY);
  if (state.similar) params.set("similar", state.similar.id);
  const query = params.toString();
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
}

/** The search in the address; filters only for attributes that facet (the schema says). */
function loadFromURL(params) {
  state.q = params.get("q") || "";
  state.negative = params.get("negative") || "";
  state.sort = params.get("sort") || "";
  state.mode = MODES.includes(params.get("mode")) ? params.get("mode") : "hybrid";
  state.diverse = Number(params.get("diversity")) > 0;
  for (const attribute of facetable()) {
    if (params.has(attribute.name)) state.filters.set(attribute.name,
                                                      new Set(params.getAll(attribute.name)));
  }
  state.priceMin = params.get("price_min") || "";
  state.priceMax = params.get("price_max") || "";
  setMinScore(Math.min(1, Math.max(0, Number(params.get("min_score")) || 0)));
  ui.q.value = state.q;
  ui.negative.value = state.negative;
  ui.priceMin.value = state.priceMin;
  ui.priceMax.value = state.priceMax;
  const similar = params.get("similar");
  if (similar) {
    state.similar = { id: similar, title: similar };
    ui.similarHeading.textContent = `More like “${similar}”`;
    ui.similarBanner.hidden = false;
  }
}

function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

const typeahead = setUpTypeahead(ui.q, ui.suggestions, { onPick: pickSuggestion });

/**
 * A suggestion picked: a brand or category the shop facets on becomes that filter (the
 * words would also find look-alikes of other brands); anything else is searched for.
 */
function pickSuggestion(suggestion) {
  const attribute = SUGGESTION_FILTERS.includes(suggestion.kind)
    && facetable().find((a) => a.name === suggestion.kind);
  if (attribute) {
    state.filters.set(attribute.name, new Set([suggestion.text]));
    state.q = "";
  } else {
    state.q = suggestion.text;
  }
  ui.q.value = state.q;
  state.negative = ui.negative.value.trim();
  leaveSimilar();
  updateAlpha();
  search();
}

ui.form.addEventListener("submit", (e) => {
  e.preventDefault();
  typeahead.cancel();
  state.q = ui.q.value.trim();
  state.negative = ui.negative.value.trim();
  leaveSimilar();
  search();
});
ui.q.addEventListener("input", updateAlpha);

ui.photo.addEventListener("change", () => {
  const file = ui.photo.files[0];
  if (!file) return;
  setPhoto(file);
  state.q = ui.q.value.trim();
  leaveSimilar();
  search();
});
ui.photoClear.addEventListener("click", () => {
  setPhoto(null);
  search();
  ui.photo.focus();
});
for (const type of ["dragenter", "dragover"]) {
  ui.dropZone.addEventListener(type, (e) => {
    e.preventDefault();
    ui.dropZone.classList.add("dragging");
  });
}
ui.dropZone.addEventListener("dragleave", () => ui.dropZone.classList.remove("dragging"));
ui.dropZone.addEventListener("drop", (e) => {
  e.preventDefault();
  ui.dropZone.classList.remove("dragging");
  const file = [...e.dataTransfer.files].find((f) => f.type.startsWith("image/"));
  if (!file) {
    errorBox.show("That is not an image: drop a JPEG, PNG, WebP or GIF photo.");
    return;
  }
  setPhoto(file);
  state.q = ui.q.value.trim();
  leaveSimilar();
  search();
});

ui.alpha.addEventListener("input", () => {
  state.alpha = Number(ui.alpha.value);
  updateAlpha();
});
ui.alpha.addEventListener("change", search);

ui.sort.addEventListener("change", () => {
  state.sort = ui.sort.value;
  search();
});

// The mode and "fewer look-alikes" apply to the words in the box, submitted or not.
ui.mode.addEventListener("change", (e) => {
  state.mode = e.target.value;
  state.q = ui.q.value.trim();
  search();
});
ui.diverse.addEventListener("change", () => {
  state.diverse = ui.diverse.checked;
  state.q = ui.q.value.trim();
  search();
});

ui.minScore.addEventListener("input", () => setMinScore(Number(ui.minScore.value)));
ui.minScore.addEventListener("change", search);

const priceChanged = debounce(() => {
  state.priceMin = ui.priceMin.value;
  state.priceMax = ui.priceMax.value;
  search();
}, 350);
ui.priceMin.addEventListener("input", priceChanged);
ui.priceMax.addEventListener("input", priceChanged);

ui.filtersToggle.addEventListener("click", () => {
  const open = ui.filtersToggle.getAttribute("aria-expanded") !== "true";
  ui.filtersToggle.setAttribute("aria-expanded", String(open));
  ui.filters.classList.toggle("open", open);
});
ui.filtersClear.addEventListener("click", clearFilters);

ui.similarBack.addEventListener("click", () => {
  leaveSimilar();
  search();
  ui.q.focus();
});
ui.loadMore.addEventListener("click", loadPage);

/** Start: filters in the address wait for the schema (it says which are filters). */
async function start() {
  const params = new URLSearchParams(location.search);
  if ([...params.keys()].some((name) => !RESERVED.has(name))) await schemaReady;
  loadFromURL(params);
  updateAlpha();
  scrollObserver.observe(ui.sentinel);
  search();
}

setUpKeyDialog({ roleName: "shopper" });
start();
