// Types of @sautikit/sdk. Request and answer shapes come from the OpenAPI document
// (schemas.d.ts, generated); this file types the SDK's own surface.
import type * as api from "./schemas";

export type * from "./schemas";

export declare const VERSION: string;
export declare const DEFAULT_BASE_URL: string;
export declare const SIGNATURE_HEADER: "X-Sautikit-Signature";
export declare const DEFAULT_TOLERANCE_SECONDS: number;

export interface SautikitOptions {
  apiKey: string;
  /** Default http://127.0.0.1:8080 */
  baseUrl?: string;
  /** Milliseconds per attempt (default 30000). */
  timeout?: number;
  /** Repeats after a connection failure, 429 or 5xx (default 2). */
  maxRetries?: number;
  /** Milliseconds before the first repeat when no Retry-After is given, doubled each time. */
  retryBackoff?: number;
  fetch?: typeof fetch;
}

export interface RequestOptions {
  /** Sent as Idempotency-Key; a fresh UUID when left out (every POST carries one). */
  idempotencyKey?: string;
}

export declare class Paginator<T> implements AsyncIterable<T> {
  page(cursor?: string): Promise<api.Page<T>>;
  all(): Promise<T[]>;
  [Symbol.asyncIterator](): AsyncIterator<T>;
}

export declare class SautikitError extends Error {
  readonly name: "SautikitError";
  /** The HTTP status, or null when no answer came. */
  readonly status: number | null;
  /** The envelope's code, e.g. "validation.invalid_field". */
  readonly code: string | null;
  readonly requestId: string | null;
  readonly field: string | null;
  /** Seconds the server asked to wait (429/503). */
  readonly retryAfter: number | null;
}

export declare class WebhookVerificationError extends Error {
  readonly name: "WebhookVerificationError";
}

type Query = Record<string, string | number | boolean | Date | null | undefined>;

export interface CallListQuery {
  status?: api.CallStatus;
  direction?: "inbound" | "outbound";
  from?: string;
  to?: string;
  created_after?: Date | string;
  created_before?: Date | string;
  limit?: number;
}

declare class Calls {
  create(params: api.CallCreate, options?: RequestOptions): Promise<api.CallOut>;
  list(query?: CallListQuery): Paginator<api.CallOut>;
  get(callId: string): Promise<api.CallDetail>;
  update(callId: string, params: api.CallChange, options?: RequestOptions): Promise<api.CallOut>;
  redirect(callId: string, actionUrl: string, options?: { method?: "POST" | "GET" }): Promise<api.CallOut>;
  hangup(callId: string): Promise<api.CallOut>;
  setRecording(callId: string, state: "paused" | "resumed" | "stopped"): Promise<api.CallOut>;
  /** A presigned URL of the call's latest recording. */
  recordingUrl(callId: string): Promise<string | null>;
}

declare class Numbers {
  available(query?: { prefix?: string; capability?: "voice" | "sms"; limit?: number }): Paginator<api.AvailableNumber>;
  claim(numberId: string, options?: RequestOptions): Promise<api.NumberOut>;
  list(query?: { status?: "active" | "suspended"; limit?: number }): Paginator<api.NumberOut>;
  get(numberId: string): Promise<api.NumberOut>;
  updateRouting(numberId: string, params: api.RoutingIn): Promise<api.NumberOut>;
  release(numberId: string): Promise<void>;
}

declare class Recordings {
  list(query?: { call_id?: string; status?: string; limit?: number }): Paginator<api.RecordingOut>;
  get(recordingId: string): Promise<api.RecordingOut>;
  delete(recordingId: string): Promise<api.RecordingOut>;
  transcription(recordingId: string): Promise<api.TranscriptionOut>;
}

declare class Webhooks {
  create(params: api.WebhookIn, options?: RequestOptions): Promise<api.WebhookCreated>;
  list(query?: { limit?: number }): Paginator<api.WebhookOut>;
  get(webhookId: string): Promise<api.WebhookOut>;
  delete(webhookId: string): Promise<void>;
}

declare class Events {
  list(query?: { kind?: string; call_id?: string; limit?: number }): Paginator<api.EventOut>;
  get(eventId: string): Promise<api.EventOut>;
  deliveries(eventId: string, query?: { limit?: number }): Paginator<api.DeliveryOut>;
  redeliver(eventId: string, options?: RequestOptions): Promise<api.DeliveryOut[]>;
}

declare class SipCredentials {
  create(numberId: string, params?: api.CredentialIn, options?: RequestOptions): Promise<api.CredentialCreated>;
  list(numberId: string, query?: { limit?: number }): Paginator<api.CredentialOut>;
  get(numberId: string, credentialId: string): Promise<api.CredentialOut>;
  rotate(numberId: string, credentialId: string, options?: RequestOptions): Promise<api.CredentialCreated>;
  delete(numberId: string, credentialId: string): Promise<void>;
}

declare class Conferences {
  list(): Paginator<api.ConferenceOut>;
  get(name: string): Promise<api.ConferenceOut>;
  mute(name: string, callId: string, muted?: boolean, options?: RequestOptions): Promise<api.ConferenceOut>;
  remove(name: string, callId: string): Promise<void>;
}

/** The queue routes' answers are not typed in the OpenAPI document yet. */
type QueueAnswer = Record<string, unknown>;

declare class Queues {
  list(): Paginator<QueueAnswer>;
  get(name: string): Promise<QueueAnswer>;
  members(name: string): Paginator<QueueAnswer>;
  remove(name: string, callId: string): Promise<void>;
}

declare class SettingsResource {
  get(): Promise<api.SettingsOut>;
  update(params: api.SettingsPatch): Promise<api.SettingsOut>;
}

export declare class Sautikit {
  constructor(options: SautikitOptions);
  readonly baseUrl: string;
  readonly calls: Calls;
  readonly numbers: Numbers;
  readonly recordings: Recordings;
  readonly webhooks: Webhooks;
  readonly events: Events;
  readonly sipCredentials: SipCredentials;
  readonly conferences: Conferences;
  readonly queues: Queues;
  readonly settings: SettingsResource;
  readonly workspace: { get(): Promise<api.WorkspaceOut> };
  readonly wallet: {
    balance(): Promise<api.WalletBalance>;
    transactions(query?: { limit?: number }): Paginator<api.WalletEntryOut>;
  };
  readonly pricing: { get(): Promise<api.Pricing> };
  /** The raw Response (status below 400), after retries. */
  send(method: string, path: string, options?: { query?: Query; body?: unknown } & RequestOptions): Promise<Response>;
  /** The answer's JSON (null when empty). */
  request<T = unknown>(method: string, path: string, options?: { query?: Query; body?: unknown } & RequestOptions): Promise<T>;
}

type Options<T, Given extends keyof T> = Omit<T, Given>;

export interface ActionBuilders {
  response(...actions: api.VoiceAction[]): api.ActionDocument;
  say(text: string, options?: Options<api.VoiceSay, "text">): api.VoicesayAction;
  play(url: string, options?: Options<api.VoicePlay, "url">): api.VoiceplayAction;
  getDigits(options?: api.VoiceGetDigits): api.VoicegetDigitsAction;
  gather(options?: api.VoiceGather): api.VoicegatherAction;
  dial(options?: api.VoiceDial): api.VoicedialAction;
  conference(name: string, options?: Options<api.VoiceConference, "name">): api.VoiceconferenceAction;
  record(options?: api.VoiceRecord): api.VoicerecordAction;
  redirect(url: string, options?: Options<api.VoiceRedirect, "url">): api.VoiceredirectAction;
  reject(reason?: api.VoiceReject["reason"]): api.VoicerejectAction;
  enqueue(name: string, options?: Options<api.VoiceEnqueue, "name">): api.VoiceenqueueAction;
  dequeue(name: string, options?: Options<api.VoiceDequeue, "name">): api.VoicedequeueAction;
  leave(): api.VoiceleaveAction;
  hangup(): api.VoicehangupAction;
  pause(length?: number): api.VoicepauseAction;
  stream(url: string, options?: Options<api.VoiceStream, "url">): api.VoicestreamAction;
}

export declare const actions: ActionBuilders;

/** What verifyWebhook reads the signature from. */
export type SignatureSource = string | Headers | Record<string, string | string[] | undefined>;
export type RawBody = Buffer | Uint8Array | ArrayBuffer | string;

export declare function verifyWebhook(
  rawBody: RawBody,
  headers: SignatureSource,
  secret: string,
  options?: { tolerance?: number; now?: number },
): true;
export declare function signWebhook(rawBody: RawBody, secret: string, timestamp?: number): string;
export declare function computeSignature(secret: string, rawBody: RawBody, timestamp: number | string): string;
export declare function callbackFields(rawBody: RawBody | null | undefined, contentType?: string | null, query?: string): Record<string, string>;
export declare function parseRetryAfter(value: string | null | undefined, now?: number): number | null;

declare const sdk: {
  Sautikit: typeof Sautikit;
  SautikitError: typeof SautikitError;
  WebhookVerificationError: typeof WebhookVerificationError;
  actions: ActionBuilders;
  verifyWebhook: typeof verifyWebhook;
  signWebhook: typeof signWebhook;
  computeSignature: typeof computeSignature;
  callbackFields: typeof callbackFields;
};
export default sdk;
