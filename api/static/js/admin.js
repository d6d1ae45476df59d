// The catalogue manager's page: uploads and imports with live job progress, the moderation
// queue; the products and predicted tags are in admin-products.js.

import { loadPredicted, loadProducts } from "./admin-products.js";
import { ApiError, GRID_WIDTH, api, imageURL, showImage } from "./api.js";
import { describeError, describeValue, el, formatScore, setUpKeyDialog } from "./ui.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = [250, 400, 600, 1000, 1500, 2000];

// ---- forms ---------------------------------------------------------------------------------

/** Submit handling shared by the upload forms: busy button, the API's reason on failure. */
function handleForm(form, busyText, send) {
  const button = form.querySelector("button[type=submit]");
  const error = form.querySelector(".form-error");
  const status = form.querySelector(".form-status");
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    error.hidden = true;
    status.replaceChildren();
    const idle = button.textContent;
    button.disabled = true;
    button.textContent = busyText;
    try {
      const what = await send();
      form.reset();
      status.replaceChildren(`${what} accepted; follow it under `,
                             el("a", { href: "#jobs-heading", text: "Jobs" }), ".");
    } catch (err) {
      error.textContent = describeError(err);
      error.hidden = false;
    } finally {
      button.disabled = false;
      button.textContent = idle;
    }
  });
}

const TEXT_FIELDS = ["id", "title", "description", "category", "colour", "gender", "brand"];

function productFields(form) {
  const data = new FormData(form);
  const fields = {};
  for (const name of TEXT_FIELDS) {
    const value = String(data.get(name) || "").trim();
    if (value) fields[name] = value;
  }
  const price = String(data.get("price") || "").trim();
  if (price) fields.price = Number(price);
  const tags = String(data.get("tags") || "").split(",").map((t) => t.trim()).filter(Boolean);
  if (tags.length) fields.tags = tags;
  return fields;
}

const productForm = $("product-form");
handleForm(productForm, "Uploading…", async () => {
  const fields = productFields(productForm);
  const form = new FormData();
  form.append("image", $("p-image").files[0]);
  form.append("metadata", JSON.stringify(fields));
  const accepted = await api("/v1/products", { method: "POST", form });
  trackJob(accepted.job_id, `Product ${fields.id}`);
  return `Product ${fields.id}`;
});

/** Pair each product with its photo: by an "image" file name, or else in file-name order. */
function pairBatch(entries, files) {
  if (!Array.isArray(entries) || !entries.length) {
    throw new Error("The product list must be a non-empty JSON list of objects.");
  }
  const named = entries.filter((e) => e && typeof e === "object" && typeof e.image === "string");
  if (named.length && named.length !== entries.length) {
    throw new Error("Give every product an \"image\" file name, or none of them.");
  }
  if (named.length) {
    const byName = new Map(files.map((f) => [f.name, f]));
    return entries.map(({ image, ...fields }) => {
      const file = byName.get(image);
      if (!file) throw new Error(`No photo named “${image}” among the files chosen.`);
      return [fields, file];
    });
  }
  if (entries.length !== files.length) {
    throw new Error(`${entries.length} products in the list but ${files.length} photos chosen.`);
  }
  const sorted = [...files].sort((a, b) => a.name.localeCompare(b.name, undefined,
                                                                 { numeric: true }));
  return entries.map((fields, i) => [fields, sorted[i]]);
}

const batchForm = $("batch-form");
$("b-file").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (file) $("b-metadata").value = await file.text();
});
handleForm(batchForm, "Uploading…", async () => {
  let entries;
  try {
    entries = JSON.parse($("b-metadata").value);
  } catch (err) {
    throw new Error(`The product list is not valid JSON: ${err.message}`);
  }
  const pairs = pairBatch(entries, [...$("b-images").files]);
  const form = new FormData();
  for (const [, file] of pairs) form.append("images", file, file.name);
  form.append("metadata", JSON.stringify(pairs.map(([fields]) => fields)));
  const accepted = await api("/v1/products/batch", { method: "POST", form });
  trackJob(accepted.job_id, `Batch of ${pairs.length}`);
  return `Batch of ${pairs.length}`;
});

const importForm = $("import-form");
handleForm(importForm, "Uploading…", async () => {
  const archive = $("i-archive").files[0];
  const prune = $("i-prune").checked;
  const form = new FormData();
  form.append("archive", archive, archive.name);
  form.append("prune", String(prune));
  const accepted = await api("/v1/imports", { method: "POST", form });
  const label = `Import of ${archive.name}${prune ? " (removing what it no longer lists)" : ""}`;
  trackJob(accepted.job_id, label);
  return label;
});

// ---- jobs ----------------------------------------------------------------------------------

function trackJob(jobId, label) {
  $("jobs-empty").hidden = true;
  const progress = el("progress", { max: "1", value: "0", "aria-label": `${label}: progress` });
  const badge = el("span", { class: "badge", text: "queued" });
  const counts = el("p", { class: "job-counts", text: "Waiting to start…" });
  const errors = el("div", { class: "job-errors" });
  const warnings = el("div", { class: "job-warnings" });
  const item = el("li", { class: "job", dataset: { jobId, state: "queued" } },
    el("div", { class: "job-head" }, el("strong", { text: label }), badge),
    progress, counts, errors, warnings);
  $("jobs").prepend(item);

  let polls = 0;
  let failures = 0;
  const poll = async () => {
    try {
      const job = await api(`/v1/jobs/${encodeURIComponent(jobId)}`);
      failures = 0;
      const finished = job.state === "done" || job.state === "failed";
      item.dataset.state = job.state;
      badge.textContent = job.state;
      progress.max = Math.max(job.total, 1);
      progress.value = job.succeeded + job.failed;
      counts.textContent = describeCounts(job, finished);
      renderJobItems(errors, job.errors, (n) => `${n} item${n === 1 ? "" : "s"} failed`);
      renderJobItems(warnings, job.warnings,
                     (n) => `${n} warning${n === 1 ? "" : "s"} (indexed all the same)`);
      if (finished) {
        if (job.succeeded || job.removed) refreshAfterIngest();
        return;
      }
    } catch (err) {
      failures += 1;
      counts.textContent = `Could not read the job: ${describeError(err)}`;
      if (failures >= 5 || (err instanceof ApiError && err.status === 404)) return;
    }
    setTimeout(poll, POLL_MS[Math.min(polls++, POLL_MS.length - 1)]);
  };
  poll();
}

/** "3 of 4 processed · 1 added · 2 updated · 1 failed": what changed, zeros left out but
 * for added and failed. */
function describeCounts(job, finished) {
  const parts = [`${job.succeeded + job.failed} of ${job.total} processed`,
                 `${job.added ?? job.succeeded} added`];
  for (const what of ["updated", "unchanged", "removed"]) {
    if (job[what]) parts.push(`${job[what]} ${what}`);
  }
  parts.push(`${job.failed} failed`);
  if (job.pending && !finished) parts.push(`${job.pending} to go`);
  return parts.join(" · ");
}

/** A job's item errors or warnings (ItemError), folded when there are many. */
function renderJobItems(container, items, summary) {
  if (!items || !items.length) {
    container.replaceChildren();
    return;
  }
  const wasOpen = container.querySelector("details")?.open;
  container.replaceChildren(el("details", { open: wasOpen || items.length <= 5 },
    el("summary", { text: summary(items.length) }),
    el("ul", {}, items.map((e) => el("li", {},
      el("strong", { text: `#${e.index + 1}${e.product_id ? ` (${e.product_id})` : ""}: ` }),
      e.error)))));
}

let refreshTimer;
function refreshAfterIngest() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => {
    loadModeration();
    loadPredicted();
    loadProducts();
    fillSuggestions();
  }, 300);
}

// ---- moderation ----------------------------------------------------------------------------

function describePrompts(prompts) {
  if (!prompts) return [];
  if (typeof prompts === "string") return [prompts];
  if (Array.isArray(prompts)) {
    return prompts.map((p) => (typeof p === "string" ? p : describeValue(p)));
  }
  return Object.entries(prompts).map(([prompt, score]) => (typeof score === "number"
    ? `${prompt} (${formatScore(score)})` : `${prompt}: ${describeValue(score)}`));
}

async function loadModeration() {
  const status = $("moderation-status");
  const list = $("moderation");
  status.textContent = "Loading…";
  try {
    const { items } = await api("/v1/moderation/queue");
    list.replaceChildren(...items.map(reviewCard));
    status.textContent = items.length ? `${items.length} waiting for review.`
                                      : "Nothing waiting for review.";
  } catch (err) {
    list.replaceChildren();
    status.textContent = `Could not load the queue: ${describeError(err)}`;
  }
}

function reviewCard(item) {
  const { product_id: id, title } = item;
  const img = el("img", { class: "thumb", alt: title || id, width: "150", height: "200" });
  showImage(img, imageURL(id, item.image_sha256, GRID_WIDTH));
  const score = typeof item.score === "number" ? `score ${formatScore(item.score)}` : null;
  const facts = [item.category, score].filter(Boolean).join(" · ");
  const prompts = describePrompts(item.prompts);
  const error = el("p", { class: "form-error", role: "alert", hidden: true });
  const buttons = ["approve", "reject"].map((decision) => el("button", {
    type: "button", class: decision === "approve" ? "primary small" : "danger small",
    text: decision === "approve" ? "Approve" : "Reject",
    "aria-label": `${decision === "approve" ? "Approve" : "Reject"} ${id}`,
    dataset: { decision },
    onclick: () => decide(card, id, decision, buttons, error),
  }));
  const card = el("li", { class: "review", dataset: { productId: id } },
    el("div", { class: "thumb-box" }, img),
    el("div", { class: "card-body" },
      el("h3", { class: "title", text: title ? `${title} (${id})` : id }),
      facts ? el("p", { class: "meta", text: facts }) : null,
      prompts.length ? el("ul", { class: "prompts", "aria-label": "Matched prompts" },
                          prompts.map((p) => el("li", { text: p }))) : null,
      el("div", { class: "actions-inline" }, buttons), error));
  return card;
}

async function decide(card, id, decision, buttons, error) {
  for (const b of buttons) b.disabled = true;
  error.hidden = true;
  try {
    await api(`/v1/moderation/${encodeURIComponent(id)}`, { method: "POST",
                                                            json: { decision } });
    const next = card.nextElementSibling || card.previousElementSibling;
    card.remove();
    const left = $("moderation").children.length;
    $("moderation-status").textContent = `${id} ${decision === "approve" ? "approved" : "rejected"}. `
      + (left ? `${left} waiting for review.` : "Nothing waiting for review.");
    (next?.querySelector("button") || $("moderation-refresh")).focus();
  } catch (err) {
    error.textContent = describeError(err);
    error.hidden = false;
    for (const b of buttons) b.disabled = false;
  }
}

// ---- suggestions for the fields ------------------------------------------------------------

async function fillSuggestions() {
  try {
    const { facets } = await api("/v1/facets");
    for (const [field, list] of [["category", "categories"], ["colour", "colours"],
                                 ["gender", "genders"], ["brand", "brands"]]) {
      $(list).replaceChildren(...Object.keys(facets[field] || {}).map(
        (value) => el("option", { value })));
    }
  } catch {
    // Suggestions are a convenience; the form works without them.
  }
}

$("moderation-refresh").addEventListener("click", loadModeration);
$("predicted-refresh").addEventListener("click", loadPredicted);
$("products-refresh").addEventListener("click", () => loadProducts());
$("products-more").addEventListener("click", () => loadProducts(true));

setUpKeyDialog({ roleName: "catalogue manager" });
loadModeration();
loadPredicted();
loadProducts();
fillSuggestions();
