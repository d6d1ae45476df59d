// Small DOM helpers and the API-key dialog both pages use.

import { onKeyNeeded, storedKey, storeKey } from "./api.js";

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

const priceFormat = new Intl.NumberFormat(undefined, { style: "currency", currency: "EUR" });

export function formatPrice(price) {
  return typeof price === "number" ? priceFormat.format(price) : "";
}

export function formatScore(score) {
  return typeof score === "number" ? score.toFixed(3) : "";
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
