"use strict";
/**
 * Sautikit's Node SDK: a REST client (`Sautikit`), builders for voice-action documents,
 * and `verifyWebhook` for the signatures on everything Sautikit sends to an app.
 *
 * One implementation, written as CommonJS so both `require()` and `import` load the same
 * code (index.mjs re-exports it); no runtime dependencies beyond Node 20's `fetch` and
 * `node:crypto`. Names follow the Python SDK (src/sautikit/client, actions.py,
 * webhooks.py); request and answer fields are the API's own JSON names.
 */

const crypto = require("node:crypto");

const { version: VERSION } = require("./package.json");
const DEFAULT_BASE_URL = "http://127.0.0.1:8080";
const SIGNATURE_HEADER = "X-Sautikit-Signature";
const DEFAULT_TOLERANCE_SECONDS = 300;
// 429 means the server did nothing; a 5xx rolls its transaction back (and every POST the
// client sends carries an Idempotency-Key), so repeating these cannot act twice.
const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
const MAX_RETRY_AFTER_SECONDS = 30;

/** An error answer of the API (or no answer at all): the envelope's fields and the status. */
class SautikitError extends Error {
  constructor(message, { status = null, code = null, requestId = null, field = null, retryAfter = null } = {}) {
    super(message);
    this.name = "SautikitError";
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.field = field;
    this.retryAfter = retryAfter;
  }
}

/** The signature is missing, malformed, stale or wrong; the message says which. */
class WebhookVerificationError extends Error {
  constructor(message) {
    super(message);
    this.name = "WebhookVerificationError";
  }
}

/** Seconds to wait from a Retry-After value (delta-seconds or an HTTP date), or null. */
function parseRetryAfter(value, now = Date.now()) {
  if (value == null || value === "") return null;
  const text = String(value).trim();
  if (/^[0-9]+(\.[0-9]+)?$/.test(text)) return Number(text);
  const when = Date.parse(text);
  return Number.isNaN(when) ? null : Math.max(0, (when - now) / 1000);
}

async function errorFromResponse(response) {
  const text = await response.text();
  let requestId = response.headers.get("x-request-id");
  let code = null;
  let message = text.slice(0, 200) || response.statusText || `HTTP ${response.status}`;
  let field = null;
  try {
    const detail = JSON.parse(text).error;
    if (detail && typeof detail.code === "string" && typeof detail.message === "string") {
      ({ code, message } = detail);
      field = typeof detail.field === "string" ? detail.field : null;
      requestId = typeof detail.request_id === "string" ? detail.request_id : requestId;
    }
  } catch {
    // Not the envelope (a proxy's page, say): the text stands as the message.
  }
  return new SautikitError(message, {
    status: response.status,
    code,
    requestId,
    field,
    retryAfter: parseRetryAfter(response.headers.get("retry-after")),
  });
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function segment(id) {
  return encodeURIComponent(String(id));
}

/** Query values that were given, spelled as strings (booleans as true/false, dates ISO). */
function queryString(values = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined || value === null) continue;
    params.set(name, value instanceof Date ? value.toISOString() : String(value));
  }
  const text = params.toString();
  return text ? `?${text}` : "";
}

/** Every item of a list, newest first; pages are fetched as iteration reaches them. */
class Paginator {
  constructor(client, path, query) {
    this._client = client;
    this._path = path;
    this._query = query || {};
  }

  /** One page `{ data, next_cursor }`: the first, or the one `cursor` names. */
  page(cursor) {
    const query = cursor ? { ...this._query, cursor } : this._query;
    return this._client.request("GET", this._path, { query });
  }

  async *[Symbol.asyncIterator]() {
    let cursor;
    for (;;) {
      const page = await this.page(cursor);
      yield* page.data;
      if (!page.next_cursor) return;
      cursor = page.next_cursor;
    }
  }

  /** Every item, fetched page by page, as one array. */
  async all() {
    const items = [];
    for await (const item of this) items.push(item);
    return items;
  }
}

/**
 * A collection under `base` (`/v1/calls`): `list(query)` pages through it, `get(id)` reads
 * one item, and `_path(id, ...)` names an item or one of its sub-resources.
 */
class Collection {
  constructor(client, base) {
    this._client = client;
    this._base = base;
  }
  _path(...parts) {
    return [this._base, ...parts.map(segment)].join("/");
  }
  list(query = {}) {
    return new Paginator(this._client, this._base, query);
  }
  get(id) {
    return this._client.request("GET", this._path(id));
  }
}

/** `/v1/calls`: place calls, read call records (`get` adds legs, events, recordings). */
class Calls extends Collection {
  /** Place an outbound call: `{ to, from, action_url, ... }`; answers at once, `queued`. */
  create(params, options = {}) {
    return this._client.request("POST", this._base, { body: params, ...options });
  }
  /** Change a live call: exactly one of `action_url`, `status`, `recording`, `transfer`. */
  update(callId, params, options = {}) {
    return this._client.request("POST", this._path(callId), { body: params, ...options });
  }
  redirect(callId, actionUrl, { method } = {}) {
    return this.update(callId, method ? { action_url: actionUrl, method } : { action_url: actionUrl });
  }
  hangup(callId) {
    return this.update(callId, { status: "completed" });
  }
  setRecording(callId, state) {
    return this.update(callId, { recording: state });
  }
  /** A presigned URL of the call's latest recording (no key needed to fetch it). */
  async recordingUrl(callId) {
    const response = await this._client.send("GET", `${this._path(callId)}/recording`);
    return response.headers.get("location");
  }
}

/** `/v1/numbers`: the inventory, and the workspace's numbers. */
class Numbers extends Collection {
  available(query = {}) {
    return new Paginator(this._client, `${this._base}/available`, query);
  }
  /** Claim a number from the inventory; pays its first month from the wallet. */
  claim(numberId, options = {}) {
    return this._client.request("POST", `${this._path(numberId)}/claim`, options);
  }
  /** Change only the fields given; `null` clears a URL. */
  updateRouting(numberId, params) {
    return this._client.request("PATCH", `${this._path(numberId)}/routing`, { body: params });
  }
  /** Hand the number back to the inventory; its rental stops. */
  async release(numberId) {
    await this._client.request("DELETE", this._path(numberId));
  }
}

/** `/v1/recordings`: metadata with fresh download URLs, and transcripts. */
class Recordings extends Collection {
  /** Remove the stored file; the metadata stays with `status: deleted`. */
  delete(recordingId) {
    return this._client.request("DELETE", this._path(recordingId));
  }
  transcription(recordingId) {
    return this._client.request("GET", `${this._path(recordingId)}/transcription`);
  }
}

/** `/v1/webhooks`: workspace-level event subscriptions. */
class Webhooks extends Collection {
  /** Subscribe `url` to `events` (`["*"]` for all); the answer's `secret` is shown once. */
  create(params, options = {}) {
    return this._client.request("POST", this._base, { body: params, ...options });
  }
  async delete(webhookId) {
    await this._client.request("DELETE", this._path(webhookId));
  }
}

/** `/v1/events`: the event log and each delivery attempt. */
class Events extends Collection {
  deliveries(eventId, query = {}) {
    return new Paginator(this._client, `${this._path(eventId)}/deliveries`, query);
  }
  /** Send the event again; answers the new pending deliveries. */
  async redeliver(eventId, options = {}) {
    const answer = await this._client.request("POST", `${this._path(eventId)}/redeliver`, options);
    return answer.data;
  }
}

/** `/v1/numbers/{id}/sip-credentials`: device logins bound to a number. */
class SipCredentials {
  constructor(client) {
    this._client = client;
  }
  _of(numberId) {
    return new Collection(this._client, `/v1/numbers/${segment(numberId)}/sip-credentials`);
  }
  /** A new login (`{ username }` optional); its `password` is in this answer only. */
  create(numberId, params = {}, options = {}) {
    return this._client.request("POST", this._of(numberId)._base, { body: params, ...options });
  }
  list(numberId, query = {}) {
    return this._of(numberId).list(query);
  }
  get(numberId, credentialId) {
    return this._of(numberId).get(credentialId);
  }
  /** A new password for the login; the answer shows it once. */
  rotate(numberId, credentialId, options = {}) {
    return this._client.request("POST", `${this._of(numberId)._path(credentialId)}/rotate`, options);
  }
  async delete(numberId, credentialId) {
    await this._client.request("DELETE", this._of(numberId)._path(credentialId));
  }
}

/** `/v1/conferences`: the live rooms, by name. */
class Conferences extends Collection {
  /** Mute (or with `muted` false unmute) a participant. */
  mute(name, callId, muted = true, options = {}) {
    const path = this._path(name, "participants", callId);
    return this._client.request("POST", path, { body: { muted }, ...options });
  }
  async remove(name, callId) {
    await this._client.request("DELETE", this._path(name, "participants", callId));
  }
}

/** `/v1/queues`: call queues and the callers waiting in them. */
class Queues extends Collection {
  /** The waiting callers, next to be taken first. */
  members(name) {
    return new Paginator(this._client, this._path(name, "members"), {});
  }
  /** Take a caller out of the queue (its enqueue's action gets `removed`). */
  async remove(name, callId) {
    await this._client.request("DELETE", this._path(name, "members", callId));
  }
}

/** `/v1/settings`: allow-lists, call caps, recording storage and retention. */
class SettingsResource {
  constructor(client) {
    this._client = client;
  }
  get() {
    return this._client.request("GET", "/v1/settings");
  }
  /** Change only the fields given; `storage_url: null` returns to Sautikit's store. */
  update(params) {
    return this._client.request("PATCH", "/v1/settings", { body: params });
  }
}

/** The Sautikit API client: `new Sautikit({ apiKey, baseUrl })`. */
class Sautikit {
  constructor({
    apiKey,
    baseUrl = DEFAULT_BASE_URL,
    timeout = 30_000,
    maxRetries = 2,
    retryBackoff = 500,
    fetch: fetchImpl = globalThis.fetch,
  } = {}) {
    if (!apiKey) throw new SautikitError("an API key is needed: new Sautikit({ apiKey: 'sk_live_…' })");
    if (typeof fetchImpl !== "function") throw new SautikitError("no fetch: Node 20 or later is needed");
    this.baseUrl = String(baseUrl).replace(/\/+$/, "");
    this.timeout = timeout;
    this.maxRetries = maxRetries;
    this.retryBackoff = retryBackoff;
    this._fetch = fetchImpl;
    this._headers = { Authorization: `Bearer ${apiKey}`, "User-Agent": `sautikit-node/${VERSION}` };
    this.calls = new Calls(this, "/v1/calls");
    this.numbers = new Numbers(this, "/v1/numbers");
    this.recordings = new Recordings(this, "/v1/recordings");
    this.webhooks = new Webhooks(this, "/v1/webhooks");
    this.events = new Events(this, "/v1/events");
    this.sipCredentials = new SipCredentials(this);
    this.conferences = new Conferences(this, "/v1/conferences");
    this.queues = new Queues(this, "/v1/queues");
    this.settings = new SettingsResource(this);
    this.workspace = { get: () => this.request("GET", "/v1/workspace") };
    this.wallet = {
      balance: () => this.request("GET", "/v1/wallet/balance"),
      transactions: (query = {}) => new Paginator(this, "/v1/wallet/transactions", query),
    };
    /** The public headline rates (needs no key, but the client sends it anyway). */
    this.pricing = { get: () => this.request("GET", "/v1/public/pricing") };
  }

  /** Milliseconds before retry `attempt` (0-based): Retry-After if the server gave one. */
  _delay(attempt, retryAfter) {
    if (retryAfter != null) return Math.min(retryAfter, MAX_RETRY_AFTER_SECONDS) * 1000;
    return this.retryBackoff * 2 ** attempt;
  }

  /**
   * The raw `Response` (below 400) of one logical request, retried after a connection
   * failure, a 429 or a 5xx. A POST gets one `Idempotency-Key` (given or fresh) that every
   * retry repeats, so the server acts at most once.
   */
  async send(method, path, { query, body, idempotencyKey } = {}) {
    const headers = { ...this._headers };
    if (method === "POST") headers["Idempotency-Key"] = idempotencyKey || crypto.randomUUID();
    if (body !== undefined) headers["Content-Type"] = "application/json";
    const url = this.baseUrl + path + queryString(query);
    for (let attempt = 0; ; attempt += 1) {
      let response;
      try {
        response = await this._fetch(url, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          redirect: "manual",
          signal: AbortSignal.timeout(this.timeout),
        });
      } catch (failure) {
        if (attempt >= this.maxRetries) {
          const error = new SautikitError(`${method} ${path}: ${failure.message}`);
          error.cause = failure;
          throw error;
        }
        await sleep(this._delay(attempt, null));
        continue;
      }
      if (response.status < 400) return response;
      if (!RETRY_STATUSES.has(response.status) || attempt >= this.maxRetries) {
        throw await errorFromResponse(response);
      }
      const retryAfter = parseRetryAfter(response.headers.get("retry-after"));
      await response.body?.cancel();
      await sleep(this._delay(attempt, retryAfter));
    }
  }

  /** The answer's JSON (null for an empty answer such as 204). */
  async request(method, path, options = {}) {
    const response = await this.send(method, path, options);
    const text = await response.text();
    return text ? JSON.parse(text) : null;
  }
}

// --- Voice-action documents (SPEC §3): each builder answers `{ verb: { parameters } }`,
// with only the parameters given (a parameter left out keeps the server's default).

function action(verb, parameters = {}) {
  const kept = {};
  for (const [name, value] of Object.entries(parameters)) {
    if (value !== undefined && value !== null) kept[name] = value;
  }
  return { [verb]: kept };
}

const actions = {
  /** The document an app answers: `{ actions: [...] }`, run top to bottom. */
  response: (...list) => ({ actions: list }),
  say: (text, options = {}) => action("say", { text, ...options }),
  play: (url, options = {}) => action("play", { url, ...options }),
  getDigits: (options = {}) => action("getDigits", options),
  gather: (options = {}) => action("gather", options),
  dial: (options = {}) => action("dial", options),
  conference: (name, options = {}) => action("conference", { name, ...options }),
  record: (options = {}) => action("record", options),
  redirect: (url, options = {}) => action("redirect", { url, ...options }),
  reject: (reason) => action("reject", { reason }),
  enqueue: (name, options = {}) => action("enqueue", { name, ...options }),
  dequeue: (name, options = {}) => action("dequeue", { name, ...options }),
  leave: () => action("leave"),
  hangup: () => action("hangup"),
  pause: (length) => action("pause", { length }),
  stream: (url, options = {}) => action("stream", { url, ...options }),
};

// --- Webhook signatures: `X-Sautikit-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(
// secret, raw_body + "." + t)>`, as src/sautikit/events/signing.py makes them.

function rawBytes(rawBody) {
  if (Buffer.isBuffer(rawBody)) return rawBody;
  if (typeof rawBody === "string") return Buffer.from(rawBody, "utf8");
  if (rawBody instanceof ArrayBuffer || ArrayBuffer.isView(rawBody)) {
    return Buffer.from(rawBody.buffer ?? rawBody, rawBody.byteOffset ?? 0, rawBody.byteLength);
  }
  throw new WebhookVerificationError(
    "the raw request body is needed (a Buffer or string): parse JSON only after verifying",
  );
}

function signatureHeader(headers) {
  if (headers == null) return undefined;
  if (typeof headers === "string") return headers;
  if (typeof headers.get === "function") return headers.get(SIGNATURE_HEADER) ?? undefined;
  const wanted = SIGNATURE_HEADER.toLowerCase();
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === wanted) return Array.isArray(value) ? value.join(",") : value;
  }
  return undefined;
}

/** The hex `v1` value for `body` sent at `timestamp` with `secret`. */
function computeSignature(secret, body, timestamp) {
  return crypto
    .createHmac("sha256", secret)
    .update(Buffer.concat([rawBytes(body), Buffer.from(`.${timestamp}`)]))
    .digest("hex");
}

/** The whole `X-Sautikit-Signature` value (for tests of an app's handlers). */
function signWebhook(rawBody, secret, timestamp = Math.floor(Date.now() / 1000)) {
  return `t=${timestamp},v1=${computeSignature(secret, rawBody, timestamp)}`;
}

/**
 * Return `true` when `headers` (Express/Fastify `req.headers`, a fetch `Headers`, or the
 * header value itself) sign `rawBody` with `secret` within `tolerance` seconds of now;
 * otherwise throw `WebhookVerificationError`. Several `v1=` values (a secret being
 * rotated) are allowed: one match is enough; they are compared in constant time.
 */
function verifyWebhook(rawBody, headers, secret, { tolerance = DEFAULT_TOLERANCE_SECONDS, now } = {}) {
  const header = signatureHeader(headers);
  if (!header || !String(header).trim()) throw new WebhookVerificationError(`the ${SIGNATURE_HEADER} header is missing`);
  if (!secret) throw new WebhookVerificationError("no secret to verify the signature with");
  const timestamps = [];
  const signatures = [];
  for (const item of String(header).split(",")) {
    const trimmed = item.trim();
    const equals = trimmed.indexOf("=");
    const name = equals < 0 ? "" : trimmed.slice(0, equals);
    const value = equals < 0 ? "" : trimmed.slice(equals + 1);
    if (!name || !value) {
      throw new WebhookVerificationError(`malformed ${SIGNATURE_HEADER} header: expected t=<seconds>,v1=<hex>`);
    }
    if (name === "t") timestamps.push(value);
    else if (name === "v1") signatures.push(value);
    // Other schemes (a future v2) are skipped so that old receivers keep working.
  }
  if (timestamps.length !== 1 || !/^[0-9]{1,12}$/.test(timestamps[0])) {
    throw new WebhookVerificationError(`malformed ${SIGNATURE_HEADER} header: it needs exactly one t=<unix seconds>`);
  }
  if (signatures.length === 0) throw new WebhookVerificationError(`${SIGNATURE_HEADER} header carries no v1 signature`);
  const timestamp = Number(timestamps[0]);
  const moment = now === undefined ? Date.now() / 1000 : now;
  if (moment - timestamp > tolerance) {
    throw new WebhookVerificationError(
      `the signature's timestamp is ${Math.floor(moment - timestamp)} s old, more than the ${tolerance} s allowed`,
    );
  }
  if (timestamp - moment > tolerance) {
    throw new WebhookVerificationError(
      `the signature's timestamp is ${Math.floor(timestamp - moment)} s in the future, more than the ${tolerance} s allowed`,
    );
  }
  const expected = Buffer.from(computeSignature(secret, rawBody, timestamp));
  let matched = false;
  // Every value is compared (no early exit) so timing tells nothing about which matched.
  for (const signature of signatures) {
    const given = Buffer.from(signature);
    const same = given.length === expected.length && crypto.timingSafeEqual(given, expected);
    matched = matched || same;
  }
  if (!matched) throw new WebhookVerificationError("the signature does not match the payload and secret");
  return true;
}

/**
 * A voice callback's fields, every value a string, whichever encoding carried them: a
 * form (the default), a JSON object (`callback_encoding: json`), or a GET's query string.
 */
function callbackFields(rawBody, contentType, query = "") {
  const fields = Object.fromEntries(new URLSearchParams(query));
  const body = rawBody == null ? Buffer.alloc(0) : rawBytes(rawBody);
  if (body.length === 0) return fields;
  const mediaType = String(contentType || "").split(";")[0].trim().toLowerCase();
  if (mediaType === "application/json") {
    const parsed = JSON.parse(body.toString("utf8"));
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new TypeError("a JSON callback body must be an object");
    }
    for (const [name, value] of Object.entries(parsed)) {
      fields[name] = typeof value === "string" ? value : JSON.stringify(value);
    }
    return fields;
  }
  if (mediaType === "" || mediaType === "application/x-www-form-urlencoded") {
    Object.assign(fields, Object.fromEntries(new URLSearchParams(body.toString("utf8"))));
    return fields;
  }
  throw new TypeError(`a callback body of type ${mediaType} is neither a form nor JSON`);
}

module.exports = {
  VERSION,
  DEFAULT_BASE_URL,
  SIGNATURE_HEADER,
  DEFAULT_TOLERANCE_SECONDS,
  Sautikit,
  SautikitError,
  Paginator,
  WebhookVerificationError,
  actions,
  verifyWebhook,
  signWebhook,
  computeSignature,
  callbackFields,
  parseRetryAfter,
};
