// The API client both pages share: the key, errors that carry the API's own message, images.

const KEY_STORAGE = "vitrine.apiKey";

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.name = "ApiError";
    this.status = status;
  }
}

export function storedKey() {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";  // storage disabled: the API must be open
  }
}

export function storeKey(key) {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

/**
 * The sentence of the API's error body, {code, message, field?, line?} on every error
 * (api/errors.py); the message already names the field and line.
 */
export function formatError(body, status) {
  if (body && typeof body.message === "string" && body.message) return body.message;
  return `the server answered ${status}`;
}

async function readDetail(response) {
  try {
    return formatError(await response.json(), response.status);
  } catch {
    return formatError(null, response.status);
  }
}

// The page decides how to ask (a dialog); concurrent 401s share one question.
let askHandler = null;
let pendingAsk = null;

export function onKeyNeeded(handler) {
  askHandler = handler;
}

function askKey(status, detail) {
  if (!askHandler) return Promise.resolve(null);
  pendingAsk ??= askHandler(status, detail).finally(() => { pendingAsk = null; });
  return pendingAsk;
}

export function apiURL(path, params) {
  const url = new URL(path, location.origin);
  for (const [name, value] of Object.entries(params || {})) {
    for (const v of Array.isArray(value) ? value : [value]) {
      if (v !== null && v !== undefined && v !== "") url.searchParams.append(name, v);
    }
  }
  return url.pathname + url.search;
}

/**
 * Call the API; JSON in and out. On 401 (no or wrong key) or 403 (a shopper's key on a
 * manager's route) ask for a key, keep it, and try again; `askForKey: false` for calls a
 * page can do without (typeahead), which then just fail.
 */
export async function api(path, { method = "GET", params, form, json, signal,
                                  askForKey = true } = {}) {
  for (let attempt = 0; ; attempt++) {
    const key = storedKey();
    const headers = { Accept: "application/json" };
    if (key) headers["X-API-Key"] = key;
    let body;
    if (json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(json);
    } else if (form) {
      body = form;
    }
    let response;
    try {
      response = await fetch(apiURL(path, params), { method, headers, body, signal });
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(0, "The server could not be reached. Check the connection and try again.");
    }
    if ((response.status === 401 || response.status === 403) && askForKey && attempt < 3) {
      const detail = await readDetail(response);
      if (storedKey() !== key) continue;  // another request got a new key meanwhile
      const entered = await askKey(response.status, detail);
      if (entered) {
        storeKey(entered);
        continue;
      }
      throw new ApiError(response.status, detail);
    }
    if (!response.ok) throw new ApiError(response.status, await readDetail(response));
    if (response.status === 204) return null;
    const type = response.headers.get("content-type") || "";
    return type.includes("json") ? response.json() : response.text();
  }
}

/**
 * Widths the server makes copies of photos at (VITRINE_PHOTO_WIDTHS' defaults): a list's
 * thumbnail and a grid card. A server without one answers 422, and showImage falls back
 * to the full display copy.
 */
export const THUMB_WIDTH = 160;
export const GRID_WIDTH = 400;

function withParams(path, sha256, width) {
  const params = [];
  if (sha256) params.push(`v=${encodeURIComponent(sha256)}`);
  if (width) params.push(`w=${width}`);
  return params.length ? `${path}?${params.join("&")}` : path;
}

/**
 * The main photo's URL; with the SHA-256 it is content-addressed and cached for a year;
 * with a `width`, a copy at most that wide.
 */
export function imageURL(productId, sha256, width = null) {
  return withParams(`/v1/products/${encodeURIComponent(productId)}/image`, sha256, width);
}

/** The URL of a product's photo number `index` (0: the main one), content-addressed. */
export function photoURL(product, index = 0, width = null) {
  const photo = product.images?.[index];
  if (!photo) {
    return imageURL(product.id, product.display_sha256 || product.image_sha256, width);
  }
  const path = `/v1/products/${encodeURIComponent(product.id)}/images/${index}`;
  return withParams(path, photo.display_sha256 || photo.sha256, width);
}

/** The same photo without `w`: the display copy, for a server that has no such width. */
function fullSize(url) {
  const parsed = new URL(url, location.origin);
  if (!parsed.searchParams.has("w")) return null;
  parsed.searchParams.delete("w");
  return parsed.pathname + parsed.search;
}

/**
 * Show a product photo. An <img> can't send a header, so with a key the photo is
 * fetched with it and shown from a blob: URL; without one the browser loads it lazily.
 */
export function showImage(img, url) {
  const fallback = fullSize(url);
  const key = storedKey();
  if (!key) {
    img.addEventListener("error", () => {
      if (fallback) showImage(img, fallback);
      else img.classList.add("broken");
    }, { once: true });
    img.loading = "lazy";
    img.src = url;
    return;
  }
  img.addEventListener("error", () => img.classList.add("broken"), { once: true });
  fetch(url, { headers: { "X-API-Key": key } })
    .then((r) => (r.ok ? r.blob() : Promise.reject(new Error(String(r.status)))))
    .then((blob) => {
      const blobURL = URL.createObjectURL(blob);
      img.addEventListener("load", () => URL.revokeObjectURL(blobURL), { once: true });
      img.src = blobURL;
    })
    .catch(() => (fallback ? showImage(img, fallback) : img.classList.add("broken")));
}
