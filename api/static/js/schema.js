// The shop's own attributes (GET /v1/schema) and what the pages call them, their values
// and the sort orders.

import { api } from "./api.js";

/** The catalogue schema, or null when it can't be read (the page then offers less). */
export async function loadSchema() {
  try {
    return await api("/v1/schema");
  } catch {
    return null;
  }
}

export function humanise(name) {
  const words = String(name).replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

export function attributeLabel(attribute) {
  return attribute.label || humanise(attribute.name);
}

const VALUE_LABELS = {
  availability: { in_stock: "In stock", out_of_stock: "Out of stock", preorder: "Preorder",
                  backorder: "Backorder" },
};

/** A facet value as shoppers read it ("in_stock" is "In stock", true is "Yes"). */
export function valueLabel(attribute, value) {
  if (attribute.type === "boolean") return { true: "Yes", false: "No" }[value] ?? value;
  return VALUE_LABELS[attribute.name]?.[value] ?? value;
}

const SORT_LABELS = { relevance: "Relevance", newest: "Newest", price_asc: "Price: low to high",
                      price_desc: "Price: high to low" };

/** "price_asc" is "Price: low to high"; a shop's own "rating_desc" is "Rating: descending". */
export function sortLabel(order, attributes = []) {
  if (SORT_LABELS[order]) return SORT_LABELS[order];
  const match = /^(.+)_(asc|desc)$/.exec(order);
  if (!match) return humanise(order);
  const attribute = attributes.find((a) => a.name === match[1]) || { name: match[1] };
  return `${attributeLabel(attribute)}: ${match[2] === "asc" ? "ascending" : "descending"}`;
}
