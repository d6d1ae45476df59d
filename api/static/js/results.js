// One search result as a card: the photo that matched, the variant's colour, size and
// price (the regular price struck through when it is on sale), the match, more like this.

import { GRID_WIDTH, photoURL, showImage } from "./api.js";
import { el, formatPrice, formatScore } from "./ui.js";

const NOT_IN_STOCK = { out_of_stock: "Out of stock", preorder: "Preorder",
                       backorder: "Backorder" };

/** The variant's price, else the product's; `was` only when the variant is on sale. */
export function prices(result) {
  const variant = result.variant || {};
  const now = variant.price ?? result.product.price;
  const was = variant.compare_at_price;
  const onSale = typeof now === "number" && typeof was === "number" && was > now;
  return { now, was: onSale ? was : null };
}

function priceTag(result) {
  const { now, was } = prices(result);
  const currency = result.product.currency;
  return el("span", { class: "prices" },
    el("span", { class: was === null ? "price" : "price sale", text: formatPrice(now, currency) }),
    was === null ? null
      : el("s", { class: "was" }, el("span", { class: "visually-hidden", text: "was " }),
           formatPrice(was, currency)));
}

/** The "match" figure: a cosine, or "exact" for a product the query names (its SKU...). */
function matchTag(match) {
  if (match === "exact") {
    return el("span", { class: "score", title: "Your search names this product: its SKU, "
                                               + "GTIN, MPN or id" },
              el("strong", { text: "exact match" }));
  }
  return el("span", { class: "score",
                      title: "How well the photo matches your search (cosine, -1 to 1)" },
            "match ", el("strong", { text: formatScore(match) }));
}

/**
 * A result's card. `match`: the figure to show, a cosine or "exact", or null where none
 * means something to a shopper (a sort by value, a fused rank, words alone).
 * `onSimilar(product)`: more like this.
 */
export function card(result, { match = null, onSimilar }) {
  const p = result.product;
  const variant = result.variant || {};
  const title = p.title || p.id;
  const img = el("img", { class: "thumb", alt: title, width: "300", height: "400",
                          decoding: "async" });
  showImage(img, photoURL(p, result.image || 0, GRID_WIDTH));
  const meta = [p.category, variant.colour ?? p.colour, variant.size, p.brand]
    .filter(Boolean).join(" · ");
  const stock = NOT_IN_STOCK[variant.availability];
  return el("li", { class: "card", dataset: { productId: result.product_id,
                                              image: String(result.image || 0),
                                              sku: variant.sku || "" } },
    el("div", { class: "thumb-box" }, img),
    el("div", { class: "card-body" },
      el("h3", { class: "title", text: title }),
      meta ? el("p", { class: "meta", text: meta }) : null,
      stock ? el("p", { class: "stock", text: stock }) : null,
      el("p", { class: "figures" }, priceTag(result),
        match === null ? null : matchTag(match)),
      el("button", { type: "button", class: "secondary small more-like",
                     "aria-label": `More like ${title}`, text: "More like this",
                     onclick: () => onSimilar(p) })));
}
