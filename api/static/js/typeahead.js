// Typeahead for a search box: GET /v1/suggest as the shopper types, in a listbox that
// follows the ARIA combobox pattern (arrow keys move, Enter picks, Escape closes, a click
// picks; the input keeps focus and names the active option with aria-activedescendant).

import { api } from "./api.js";
import { el } from "./ui.js";

const DELAY_MS = 120;  // a pause in typing, not every keystroke
const MIN_CHARS = 2;
const LIMIT = 8;
const KIND_LABELS = { brand: "Brand", category: "Category" };  // titles need no label

/**
 * Wire `input` (role combobox) to `listbox`. `onPick(suggestion)` runs when one is chosen;
 * `cancel()` of the returned object drops suggestions still on their way (call it when the
 * form is submitted, so a late answer doesn't open the list over the results).
 */
export function setUpTypeahead(input, listbox, { onPick }) {
  let suggestions = [];
  let active = -1;
  let timer = null;
  let controller = null;
  let asked = 0;  // numbers each request: only the latest one's answer is shown

  function cancel() {
    clearTimeout(timer);
    controller?.abort();
    controller = null;
    asked += 1;
  }

  function close() {
    listbox.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  }

  function setActive(index) {
    active = index;
    [...listbox.children].forEach((option, i) => {
      option.setAttribute("aria-selected", String(i === index));
    });
    const option = listbox.children[index];
    if (option) {
      input.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    } else {
      input.removeAttribute("aria-activedescendant");
    }
  }

  function render() {
    listbox.replaceChildren(...suggestions.map((s, i) => el("li", {
      id: `${listbox.id}-${i}`, role: "option", class: "suggestion", "aria-selected": "false",
      dataset: { kind: s.kind },
      // mousedown would move focus off the input (and close the list) before the click.
      onmousedown: (e) => e.preventDefault(),
      onclick: () => pick(i),
    }, el("span", { class: "suggestion-text", text: s.text }),
       KIND_LABELS[s.kind] ? el("span", { class: "suggestion-kind", text: KIND_LABELS[s.kind] })
         : null)));
    active = -1;
    if (suggestions.length) {
      listbox.hidden = false;
      input.setAttribute("aria-expanded", "true");
      input.removeAttribute("aria-activedescendant");
    } else {
      close();
    }
  }

  function pick(index) {
    const suggestion = suggestions[index];
    cancel();
    close();
    if (suggestion) onPick(suggestion);
  }

  async function fetchSuggestions(text) {
    const mine = ++asked;
    controller?.abort();
    controller = new AbortController();
    try {
      // Without a key the list stays shut: no key dialog in the middle of typing.
      const body = await api("/v1/suggest", { params: { q: text, limit: LIMIT },
                                              signal: controller.signal, askForKey: false });
      if (mine !== asked || document.activeElement !== input) return;
      suggestions = body.suggestions;
      render();
    } catch {
      // Suggestions are a convenience: the search box works without them.
      if (mine === asked) close();
    }
  }

  input.addEventListener("input", () => {
    cancel();
    const text = input.value;
    if (text.trim().length < MIN_CHARS) {
      suggestions = [];
      close();
      return;
    }
    timer = setTimeout(() => fetchSuggestions(text), DELAY_MS);
  });

  input.addEventListener("keydown", (e) => {
    const open = !listbox.hidden;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      if (!suggestions.length) return;
      e.preventDefault();
      if (!open) {
        render();
      }
      const step = e.key === "ArrowDown" ? 1 : -1;
      const n = suggestions.length;
      setActive(active === -1 ? (step > 0 ? 0 : n - 1) : (active + step + n) % n);
    } else if (e.key === "Enter" && open && active >= 0) {
      e.preventDefault();  // the option, not the form
      pick(active);
    } else if (e.key === "Escape" && open) {
      e.preventDefault();  // a search input would also clear itself
      cancel();
      close();
    } else if (e.key === "Tab") {
      close();
    }
  });

  input.addEventListener("blur", close);
  return { cancel: () => { cancel(); close(); } };
}
