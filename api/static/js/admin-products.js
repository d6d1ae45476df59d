// The managers' view of the catalogue: every product, and those with predicted tags, each
// with Edit (PATCH) and Delete (DELETE); a prediction is confirmed or corrected by PATCHing
// its field, after which it is no longer a prediction.

import { ApiError, THUMB_WIDTH, api, photoURL, showImage } from "./api.js";
import { describeError, describeValue, el, formatPrice } from "./ui.js";

const $ = (id) => document.getElementById(id);
const PAGE = 50;
// What the edit form changes; `list` names the datalist that suggests values.
const EDITABLE = [
  { name: "title", label: "Title" },
  { name: "category", label: "Category", list: "categories" },
  { name: "colour", label: "Colour", list: "colours" },
  { name: "brand", label: "Brand", list: "brands" },
  { name: "price", label: "Price", number: true },
  { name: "tags", label: "Tags (separated by commas)" },
];
const SUGGESTIONS = { category: "categories", colour: "colours", gender: "genders",
                      brand: "brands" };

const splitTags = (text) => text.split(",").map((t) => t.trim()).filter(Boolean);

// ---- rows ----------------------------------------------------------------------------------

/** A product's row in the list `kind` ("catalogue" or "predicted"). */
function productRow(product, kind) {
  const row = el("li", { class: kind === "predicted" ? "product-row predicted" : "product-row",
                         dataset: { productId: product.id, kind } });
  fillRow(row, product);
  return row;
}

function facts(product) {
  const price = product.price ?? product.variants?.[0]?.price;
  const status = product.moderation_status;
  return [product.category, product.colour, product.brand, formatPrice(price, product.currency),
          product.tags?.length ? `tags: ${product.tags.join(", ")}` : null,
          status && status !== "visible" ? status : null].filter(Boolean).join(" · ");
}

function fillRow(row, product) {
  const { id } = product;
  const img = el("img", { class: "thumb small", alt: product.title || id, width: "60",
                          height: "80" });
  showImage(img, photoURL(product, 0, THUMB_WIDTH));
  row.replaceChildren(img,
    el("div", { class: "row-body" },
      el("p", { class: "title" }, el("strong", { text: product.title || id }),
         product.title ? el("span", { class: "meta", text: ` ${id}` }) : null),
      el("p", { class: "meta facts", text: facts(product) }),
      row.dataset.kind === "predicted" ? chips(row, product) : null,
      el("p", { class: "form-error", role: "alert", hidden: true })),
    el("div", { class: "actions-inline row-actions" },
      el("button", { type: "button", class: "secondary small", text: "Edit",
                     "aria-label": `Edit ${id}`, onclick: () => openEditor(row, product) }),
      el("button", { type: "button", class: "danger small", text: "Delete",
                     "aria-label": `Delete ${id}`, onclick: () => askDelete(row, product) })));
}

const rowsOf = (id) => [...document.querySelectorAll(".product-row")]
  .filter((row) => row.dataset.productId === id);

function setBusy(row, busy) {
  for (const button of row.querySelectorAll("button")) button.disabled = busy;
}

function showRowError(row, err) {
  const box = row.querySelector(".form-error");
  box.textContent = describeError(err);
  box.hidden = false;
}

/** Show a changed product in every row that lists it; a predicted row with nothing left
 * to review goes. */
function showEverywhere(product) {
  for (const row of rowsOf(product.id)) {
    if (row.dataset.kind === "predicted" && !Object.keys(product.predicted || {}).length) {
      row.remove();
    } else {
      fillRow(row, product);
    }
  }
  showCounts();
}

/** PATCH `changes`; true when they were saved (the reason shows in the row otherwise). */
async function change(row, id, changes) {
  setBusy(row, true);
  try {
    const product = await api(`/v1/products/${encodeURIComponent(id)}`,
                              { method: "PATCH", json: changes });
    showEverywhere(product);
    (row.isConnected ? row.querySelector("button") : $("predicted-refresh")).focus();
    return true;
  } catch (err) {
    setBusy(row, false);
    showRowError(row, err);
    return false;
  }
}

// ---- editing -------------------------------------------------------------------------------

function initial(product, name) {
  if (name === "tags") return (product.tags || []).join(", ");
  const value = product[name];
  return value === null || value === undefined ? "" : String(value);
}

/** The fields the manager changed; an emptied one is cleared (null). */
function changesFrom(inputs, product) {
  const changes = {};
  for (const { name, number } of EDITABLE) {
    const text = inputs[name].value.trim();
    if (text === initial(product, name)) continue;
    if (name === "tags") changes.tags = splitTags(text);
    else if (name === "title") changes.title = text;
    else if (number) changes[name] = text === "" ? null : Number(text);
    else changes[name] = text || null;
  }
  return changes;
}

function openEditor(row, product) {
  const prefix = `edit-${row.dataset.kind}-${product.id}`;
  const inputs = {};
  const fields = EDITABLE.map(({ name, label, list, number }) => {
    const id = `${prefix}-${name}`;
    inputs[name] = el("input", {
      id, name, list, type: number ? "number" : "text", min: number ? "0" : null,
      step: number ? "0.01" : null, inputmode: number ? "decimal" : null,
      maxlength: number ? null : name === "title" ? "500" : "100", autocomplete: "off",
      value: initial(product, name),
    });
    return el("div", { class: "field" }, el("label", { for: id, text: label }), inputs[name]);
  });
  const close = () => {
    fillRow(row, product);
    row.querySelector("button").focus();
  };
  const form = el("form", {
    class: "form-grid edit-form", "aria-label": `Edit ${product.id}`,
    onsubmit: async (e) => {
      e.preventDefault();
      if (!form.reportValidity()) return;
      const changes = changesFrom(inputs, product);
      if (!Object.keys(changes).length) close();
      else await change(row, product.id, changes);
    },
  }, el("p", { class: "title wide" },
         el("strong", { text: `Editing ${product.title || product.id}` }),
         el("span", { class: "meta", text: ` ${product.id}` })),
  fields, el("div", { class: "form-actions wide" },
    el("button", { type: "submit", class: "primary small", text: "Save changes" }),
    el("button", { type: "button", class: "secondary small", text: "Cancel", onclick: close }),
    el("p", { class: "form-error", role: "alert", hidden: true })));
  row.replaceChildren(row.querySelector("img"), form);
  inputs.title.focus();
}

// ---- deleting ------------------------------------------------------------------------------

function askDelete(row, product) {
  const keep = el("button", { type: "button", class: "secondary small", text: "Keep",
                              onclick: () => {
                                fillRow(row, product);
                                row.querySelector(".danger").focus();
                              } });
  row.querySelector(".row-actions").replaceChildren(
    el("span", { class: "confirm-text", text: "Delete this product?" }),
    el("button", { type: "button", class: "danger small", text: "Delete for good",
                   "aria-label": `Delete ${product.id} for good`,
                   onclick: () => remove(row, product.id) }),
    keep);
  keep.focus();
}

async function remove(row, id) {
  setBusy(row, true);
  try {
    await api(`/v1/products/${encodeURIComponent(id)}`, { method: "DELETE" });
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 404)) {  // already gone is gone
      setBusy(row, false);
      showRowError(row, err);
      return;
    }
  }
  const next = row.nextElementSibling || row.previousElementSibling;
  for (const shown of rowsOf(id)) shown.remove();
  showCounts(`${id} deleted. `);
  (next?.querySelector("button") || $("products-refresh")).focus();
}

// ---- predictions ---------------------------------------------------------------------------

function chips(row, product) {
  return el("ul", { class: "chips", "aria-label": "Predicted attributes" },
            Object.entries(product.predicted || {}).map(
              ([field, guess]) => chip(row, product, field, guess)));
}

function chip(row, product, field, guess) {
  const value = guess && typeof guess === "object" ? guess.value : undefined;
  const item = el("li", { class: "chip", dataset: { field } },
                  el("span", { class: "chip-key", text: `${field}: ` }), describeValue(guess));
  if (value === undefined || value === null) return item;
  item.append(
    el("button", { type: "button", class: "chip-action", text: "Confirm",
                   "aria-label": `Confirm ${field} ${value} for ${product.id}`,
                   onclick: () => change(row, product.id, { [field]: value }) }),
    el("button", { type: "button", class: "chip-action", text: "Correct",
                   "aria-label": `Correct ${field} of ${product.id}`,
                   onclick: () => openCorrection(item, row, product, field, value) }));
  return item;
}

function openCorrection(item, row, product, field, value) {
  const id = `correct-${product.id}-${field}`;
  const input = el("input", { id, value: String(value), list: SUGGESTIONS[field],
                              required: true, maxlength: "100", autocomplete: "off" });
  const form = el("form", {
    class: "chip-form",
    onsubmit: (e) => {
      e.preventDefault();
      if (input.value.trim()) change(row, product.id, { [field]: input.value.trim() });
    },
  }, el("label", { for: id, class: "visually-hidden",
                   text: `The right ${field} of ${product.id}` }),
  input,
  el("button", { type: "submit", class: "chip-action", text: "Save",
                 "aria-label": `Save ${field} of ${product.id}` }),
  el("button", { type: "button", class: "chip-action", text: "Cancel",
                 onclick: () => fillRow(row, product) }));
  item.replaceChildren(el("span", { class: "chip-key", text: `${field}: ` }), form);
  input.select();
}

// ---- the lists -----------------------------------------------------------------------------

let productsNext = null;  // next_offset of the products list
let predictedMore = false;
const loads = { products: 0, predicted: 0 };  // a newer load wins over a late answer

function showCounts(note = "") {
  showProductsCount(note);
  showPredictedCount();
}

function showProductsCount(note = "") {
  const n = $("products").children.length;
  $("products-status").textContent = note + (n
    ? `${n} product${n === 1 ? "" : "s"} shown${productsNext ? "; more below" : ""}.`
    : "No products yet.");
}

function showPredictedCount() {
  const p = $("predicted").children.length;
  $("predicted-status").textContent = p
    ? `${predictedMore ? "The first " : ""}${p} product${p === 1 ? "" : "s"} with predicted `
      + "attributes (confirm one, or correct it with the right value)."
    : "No products with predicted attributes.";
}

/** The catalogue, 50 at a time; `more` appends the next page. */
export async function loadProducts(more = false) {
  const load = ++loads.products;
  if (!more) $("products-status").textContent = "Loading…";
  try {
    const body = await api("/v1/products",
                           { params: { limit: PAGE, offset: more ? productsNext : null } });
    if (load !== loads.products) return;
    const rows = body.data.map((product) => productRow(product, "catalogue"));
    if (more) $("products").append(...rows);
    else $("products").replaceChildren(...rows);
    productsNext = body.next_offset;
    $("products-more").hidden = !productsNext;
    showProductsCount();
  } catch (err) {
    if (load !== loads.products) return;
    $("products-status").textContent = `Could not load the products: ${describeError(err)}`;
  }
}

export async function loadPredicted() {
  const load = ++loads.predicted;
  $("predicted-status").textContent = "Loading…";
  try {
    const body = await api("/v1/products", { params: { predicted: "true", limit: PAGE } });
    if (load !== loads.predicted) return;
    $("predicted").replaceChildren(...body.data.map((product) => productRow(product,
                                                                            "predicted")));
    predictedMore = Boolean(body.next_offset);
    showPredictedCount();
  } catch (err) {
    if (load !== loads.predicted) return;
    $("predicted").replaceChildren();
    $("predicted-status").textContent = `Could not load predicted tags: ${describeError(err)}`;
  }
}
