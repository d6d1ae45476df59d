// The managers' "try a search": the shop's search with what each result matched on
// (explain=true: the photo's cosine, the words' BM25 score, the query words the product has,
// and whether the query named it exactly), for tuning the search and the catalogue's words.

import { api } from "./api.js";
import { describeError, el, formatScore } from "./ui.js";

const $ = (id) => document.getElementById(id);
const LIMIT = 10;
const MODE_LABELS = { hybrid: "words + pictures", semantic: "pictures", keyword: "words" };

const figure = (value) => (typeof value === "number" ? formatScore(value) : "–");

function resultRow(result, rank, explained) {
  const p = result.product;
  const why = result.explain || {};
  const cells = [
    el("td", { text: String(rank) }),
    el("td", {}, el("strong", { text: p.title || p.id }), el("span", { class: "meta",
                                                                      text: ` ${p.id}` })),
    el("td", { class: "num", text: figure(result.score) }),
  ];
  if (explained) {
    cells.push(
      el("td", { class: "num", text: figure(why.dense) }),
      el("td", { class: "num", text: figure(why.keyword) }),
      el("td", { text: why.terms?.length ? why.terms.join(", ") : "–" }),
      el("td", { text: why.exact ? "exact" : "" }));
  }
  return el("tr", { dataset: { productId: result.product_id } }, cells);
}

async function trySearch(e) {
  e.preventDefault();
  const q = $("t-q").value.trim();
  const status = $("try-status");
  const table = $("try-results");
  if (!q) {
    status.textContent = "Type a query to try.";
    return;
  }
  const mode = $("t-mode").value;
  const explained = $("t-explain").checked;
  status.textContent = "Searching…";
  try {
    const body = await api("/v1/search", { params: { q, mode, limit: LIMIT,
                                                     explain: explained ? "true" : null } });
    // [heading, numeric]
    const head = [["#"], ["Product"], [mode === "hybrid" ? "Fused score" : "Score", true]];
    if (explained) {
      head.push(["Photo (cosine)", true], ["Words (BM25)", true], ["Matched words"], ["Exact"]);
    }
    table.replaceChildren(
      el("thead", {}, el("tr", {}, head.map(([text, numeric]) => el("th", {
        scope: "col", class: numeric ? "num" : null, text })))),
      el("tbody", {}, body.results.map((r, i) => resultRow(r, i + 1, explained))));
    table.hidden = !body.results.length;
    status.textContent = body.results.length
      ? `The first ${body.results.length} for “${q}”, by ${MODE_LABELS[mode]}.`
      : `Nothing found for “${q}” by ${MODE_LABELS[mode]}.`;
  } catch (err) {
    table.hidden = true;
    status.textContent = `The search failed: ${describeError(err)}`;
  }
}

$("try-form").addEventListener("submit", trySearch);
$("t-explain").addEventListener("change", () => {
  if ($("t-q").value.trim()) $("try-form").requestSubmit();
});
