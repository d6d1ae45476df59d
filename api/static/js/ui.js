// Small DOM helpers and the API-key dialog both pages use.

import { ApiError, onKeyNeeded, storedKey, storeKey } from "./api.js";

/** el("p", {class: "x", text: "hi"}, child, ...): attributes, text, listeners (on*), children. */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else if (name === "class") node.className = value;
    else if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (value === true) node.setAttribute(name, "");
    else node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

const priceFormats = new Map();

/** A price in the product's currency (euros where it names none). */
export function formatPrice(price, currency) {
  if (typeof price !== "number") return "";
  const code = currency || "EUR";
  if (!priceFormats.has(code)) {
    try {
      priceFormats.set(code, new Intl.NumberFormat(undefined, { style: "currency",
                                                                currency: code }));
    } catch {
      priceFormats.set(code, { format: (n) => `${n.toFixed(2)} ${code}` });  // not a currency
    }
  }
  return priceFormats.get(code).format(price);
}

export function formatScore(score) {
  return typeof score === "number" ? score.toFixed(3) : "";
}

/** A failed call as a manager reads it: the API's own reason, with what kind of refusal. */
export function describeError(err) {
  if (!(err instanceof ApiError)) return err.message || String(err);
  if (err.status === 401 || err.status === 403) return `Not allowed: ${err.message}`;
  if (err.status === 413) return `Too large: ${err.message}`;
  return err.message;
}

/** A value the API gives as JSON, for people: a prediction as "red (87%, applied)". */
export function describeValue(value) {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.map(describeValue).join(", ");
  if (typeof value === "number") return formatScore(value);
  if (typeof value !== "object") return String(value);
  const label = value.value ?? value.label ?? value.tag ?? value.name ?? value.prompt;
  const confidence = value.confidence ?? value.score ?? value.probability;
  if (label !== undefined) {
    const notes = [typeof confidence === "number" ? `${Math.round(confidence * 100)}%` : null,
                   value.applied === true ? "applied" : null].filter(Boolean);
    return notes.length ? `${label} (${notes.join(", ")})` : String(label);
  }
  return Object.entries(value).map(([k, v]) => `${k}: ${describeValue(v)}`).join(", ");
}

/** An alert box: show(message, {action}) / hide(). */
export function alertBox(node) {
  return {
    show(message, action) {
      node.replaceChildren(el("p", { text: message }));
      if (action) node.append(el("button", { type: "button", class: "link", text: action.label,
                                              onclick: action.run }));
      node.hidden = false;
    },
    hide() {
      node.hidden = true;
      node.replaceChildren();
    },
  };
}

/**
 * Wire the key dialog: the API client opens it on 401/403; the header button opens it
 * any time. Resolves with the key entered, or null when cancelled.
 */
export function setUpKeyDialog({ roleName }) {
  const dialog = document.getElementById("key-dialog");
  const input = document.getElementById("key-input");
  const message = document.getElementById("key-message");
  const button = document.getElementById("key-button");

  const refreshButton = () => {
    button.textContent = storedKey() ? "API key ✓" : "API key";
    button.setAttribute("aria-label", storedKey() ? "API key (set): change or forget it"
                                                  : "Enter an API key");
  };

  function ask(text) {
    message.textContent = text;
    input.value = "";
    dialog.returnValue = "";
    dialog.showModal();
    input.focus();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => {
        const key = dialog.returnValue === "save" ? input.value.trim() : "";
        refreshButton();
        resolve(key || null);
      }, { once: true });
    });
  }

  onKeyNeeded((status, detail) => ask(status === 403
    ? `This needs a ${roleName} key: ${detail}.`
    : `This server needs an API key (${roleName}). ${detail}.`));

  button.addEventListener("click", async () => {
    const had = storedKey();
    const key = await ask(had ? "A key is stored in this browser. Enter a new one, or leave "
                                + "the field empty and choose “Use this key” to forget it."
                              : `Enter your ${roleName} API key.`);
    if (key !== null) storeKey(key);
    else if (had && dialog.returnValue === "save") storeKey("");
    refreshButton();
    if (storedKey() !== had) location.reload();  // start over with the new key
  });
  refreshButton();
  return ask;
}
