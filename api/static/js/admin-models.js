// The catalogue manager's "Model versions" panel: the versions (the live one marked), and a
// reindex into another model with its progress, polled until it ends.

import { api } from "./api.js";
import { describeError, el, formatScore } from "./ui.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = [300, 500, 800, 1200, 2000];

async function loadModels() {
  const status = $("models-status");
  const table = $("models");
  try {
    const { versions, reindex } = await api("/v1/models");
    table.tBodies[0].replaceChildren(...versions.map(versionRow));
    table.hidden = !versions.length;
    status.textContent = versions.length ? "" : "No model versions yet.";
    if (reindex && !$("reindex-jobs").querySelector(`[data-job-id="${reindex.id}"]`)) {
      trackReindex(reindex);
    }
  } catch (err) {
    status.textContent = `Could not load the model versions: ${describeError(err)}`;
  }
}

function versionRow(v) {
  const scores = Object.entries(v.evaluation || {})
    .filter(([, x]) => typeof x === "number").map(([k, x]) => `${k} ${formatScore(x)}`);
  return el("tr", { dataset: { versionId: v.id, live: String(v.live) } },
    el("td", {}, el("code", { text: v.id })),
    el("td", { class: "model", text: v.model }),
    el("td", { class: "num", text: `${v.dim}-d` }),
    el("td", { class: "num", text: v.products ?? "" }),
    el("td", {}, el("span", { class: "badge", text: v.live ? "live" : v.state })),
    el("td", { text: scores.join(", ") }));
}

function describeReindex(job) {
  const parts = [`${job.done} of ${job.total} products`];
  if (job.failed) parts.push(`${job.failed} failed`);
  if (job.message) parts.push(job.message);
  return parts.join(" · ");
}

/** A reindex job as a list item, polled until it is done or failed. */
function trackReindex(job) {
  const progress = el("progress", { max: "1", value: "0",
                                    "aria-label": `Reindex into ${job.model}: progress` });
  const badge = el("span", { class: "badge", text: job.state });
  const counts = el("p", { class: "job-counts", text: "Waiting to start…" });
  const item = el("li", { class: "job", id: "reindex-job",
                          dataset: { jobId: job.id, state: job.state } },
    el("div", { class: "job-head" }, el("strong", { text: `Reindex into ${job.model}` }), badge),
    progress, counts);
  $("reindex-jobs").querySelector("#reindex-job")?.removeAttribute("id");
  $("reindex-jobs").prepend(item);
  let polls = 0;
  let failures = 0;
  const show = (j) => {
    item.dataset.state = j.state;
    badge.textContent = j.state;
    progress.max = Math.max(j.total, 1);
    progress.value = j.state === "done" ? progress.max : j.done;
    counts.textContent = describeReindex(j);
  };
  const poll = async () => {
    try {
      const current = await api(`/v1/models/reindex/${encodeURIComponent(job.id)}`);
      failures = 0;
      show(current);
      if (current.state === "done" || current.state === "failed") {
        loadModels();
        return;
      }
    } catch (err) {
      failures += 1;
      counts.textContent = `Could not read the reindex: ${describeError(err)}`;
      if (failures >= 5) return;
    }
    setTimeout(poll, POLL_MS[Math.min(polls++, POLL_MS.length - 1)]);
  };
  show(job);
  poll();
}

const form = $("reindex-form");
form.addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!form.reportValidity()) return;
  const button = form.querySelector("button[type=submit]");
  const error = form.querySelector(".form-error");
  error.hidden = true;
  button.disabled = true;
  try {
    const job = await api("/v1/models/reindex", { method: "POST",
                                                  json: { model: $("m-model").value.trim() } });
    form.reset();
    trackReindex(job);
  } catch (err) {
    error.textContent = describeError(err);
    error.hidden = false;
  } finally {
    button.disabled = false;
  }
});

$("models-refresh").addEventListener("click", loadModels);
loadModels();
