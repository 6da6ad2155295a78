// Generated from Sautikit's OpenAPI document by tests/sdk/node_types.py: do not edit.

/** One page of a list, and the cursor of the next page (null on the last). */
export type Page<T> = {
  data: Array<T>;
  next_cursor: string | null;
};

export type ActionDocument = {
  actions: Array<VoiceAction>;
};

export type ApiKeyCreated = ApiKeyOut & {
  secret: string;
};

export type ApiKeyIn = {
  name?: string;
  scopes: Array<"calls.read" | "calls.write" | "keys.manage" | "numbers.read" | "numbers.write" | "recordings.read" | "recordings.write" | "settings.read" | "sip.manage" | "wallet.read" | "wallet.write" | "webhooks.manage">;
};

export type ApiKeyOut = {
  id: string;
  name: string;
  prefix: string;
  scopes: Array<string>;
  created_at: string;
  revoked_at: string | null;
};

export type ApiKeyPage = Page<ApiKeyOut>;

export type AttemptOut = {
  attempted_at: string;
  status_code: number | null;
  latency_ms: number | null;
  error: string | null;
};

export type AvailableNumber = {
  id: string;
  number: string;
  capabilities: Array<string>;
  monthly_price_minor: number;
  currency?: string;
};

export type AvailablePage = Page<AvailableNumber>;

export type CallChange = {
  action_url?: string | null;
  method?: "POST" | "GET";
  status?: "completed" | null;
  recording?: "paused" | "resumed" | "stopped" | null;
  stream?: "stopped" | null;
  stream_name?: string | null;
  transfer?: string | null;
};

export type CallCreate = {
  to: string;
  from: string;
  action_url: string;
  method?: "POST" | "GET";
  events_url?: string | null;
  fallback_url?: string | null;
  timeout?: number;
  record?: boolean;
  max_duration?: number | null;
  machine_detection?: "Enable" | "DetectMessageEnd" | null;
  async_amd?: boolean;
  async_amd_status_callback?: string | null;
  machine_detection_timeout?: number;
  machine_detection_speech_threshold?: number;
  machine_detection_speech_end_threshold?: number;
  machine_detection_silence_timeout?: number;
};

export type CallDetail = CallOut & {
  legs: Array<CallOut>;
  events: Array<CallEventRef>;
  recordings: Array<CallRecordingRef>;
};

export type CallErrorOut = {
  code: string;
  message: string;
  sip_status?: number;
};

export type CallEventRef = {
  id: string;
  kind: string;
  occurred_at: string;
};

export type CallOut = {
  id: string;
  direction: "inbound" | "outbound";
  from: string;
  to: string;
  status: CallStatus;
  number_id: string | null;
  parent_call_id: string | null;
  created_at: string | null;
  started_at: string | null;
  answered_at: string | null;
  ended_at: string | null;
  duration_seconds: number | null;
  hangup_cause: "normal_clearing" | "caller_hangup" | "callee_hangup" | "no_answer" | "busy" | "rejected" | "insufficient_funds" | "max_duration" | "application_error" | "network_error" | null;
  price_minor: number | null;
  currency: "KES";
  error: CallErrorOut | null;
  quality?: Record<string, unknown> | null;
  on_net?: boolean;
  answered_by?: string | null;
};

export type CallPage = Page<CallOut>;

export type CallRecordingRef = {
  id: string;
  source: string;
  status: string;
  duration_seconds: number | null;
};

export type CallStatus = "queued" | "ringing" | "answered" | "completed" | "busy" | "no_answer" | "failed" | "canceled";

export type ConferenceOut = {
  name: string;
  status: "waiting" | "in-progress";
  created_at: string;
  participants: Array<ParticipantOut>;
};

export type ConferencePage = Page<ConferenceOut>;

export type CredentialCreated = CredentialOut & {
  password: string;
  replaces?: string | null;
};

export type CredentialIn = {
  username?: string | null;
  digest_algorithms?: Array<string> | null;
};

export type CredentialOut = {
  id: string;
  number_id: string;
  username: string;
  realm: string;
  identity: string;
  registrar: RegistrarOut;
  status: string;
  created_at: string;
  revoked_at: string | null;
  registrations?: Array<RegistrationOut>;
};

export type CredentialPage = Page<CredentialOut>;

export type CreditIn = {
  amount_minor: number;
  reference: string;
};

export type DeliveryOut = {
  id: string;
  event_id: string;
  url: string;
  subscription_id: string | null;
  status: string;
  attempt_count: number;
  next_attempt_at: string | null;
  created_at: string;
  delivered_at: string | null;
  attempts: Array<AttemptOut>;
};

export type DeliveryPage = Page<DeliveryOut>;

export type DestinationRate = {
  prefix: string;
  destination: string;
  per_minute_minor: number;
};

export type ErrorDetail = {
  code: string;
  message: string;
  request_id?: string | null;
  field?: string | null;
};

export type ErrorEnvelope = {
  error: ErrorDetail;
};

export type EventOut = {
  id: string;
  kind: string;
  workspace_id: string;
  call_id: string | null;
  occurred_at: string;
  data: Record<string, unknown>;
  events_url: string | null;
  dispatched_at: string | null;
};

export type EventPage = Page<EventOut>;

export type NumberOut = {
  id: string;
  number: string;
  capabilities: Array<string>;
  monthly_price_minor: number;
  currency?: string;
  status: "active" | "suspended";
  voice_url: string | null;
  voice_method: "POST" | "GET";
  fallback_url: string | null;
  events_url: string | null;
  callback_encoding: "form" | "json" | null;
  claimed_at: string | null;
  paid_until: string | null;
  created_at: string;
};

export type NumberPage = Page<NumberOut>;

export type OperatorKeyPage = Page<ApiKeyOut>;

export type OperatorWorkspaceOut = {
  id: string;
  name: string;
  created_at: string;
};

export type OperatorWorkspacePage = Page<OperatorWorkspaceOut>;

export type ParticipantChange = {
  muted: boolean;
};

export type ParticipantOut = {
  call_id: string;
  muted: boolean;
};

export type PaybillOut = {
  shortcode: string;
  account_reference: string;
};

export type Pricing = {
  currency?: string;
  billing_increment_seconds?: number;
  number_rental_monthly_minor: number;
  inbound_per_minute_minor: number;
  outbound: Array<DestinationRate>;
  on_net: Array<DestinationRate>;
  transcription_per_minute_minor: number;
};

export type QueueMemberOut = {
  call_id: string;
  position: number;
  wait_seconds: number;
  joined_at: string | null;
};

export type QueueMemberPage = Page<QueueMemberOut>;

export type QueueOut = {
  id: string;
  name: string;
  size: number;
  max_size: number;
  average_wait_seconds: number;
  created_at: string | null;
};

export type QueuePage = Page<QueueOut>;

export type ReceivedOut = {
  transport: string;
  host: string;
  port: number;
};

export type RecordingOut = {
  id: string;
  call_id: string;
  source: string;
  status: string;
  duration_seconds: number | null;
  channels: number;
  format: string;
  size_bytes: number | null;
  sha256: string | null;
  storage_key: string | null;
  created_at: string;
  download_url: string | null;
  download_url_expires_at: string | null;
};

export type RecordingPage = Page<RecordingOut>;

export type Redelivered = {
  data: Array<DeliveryOut>;
};

export type RegistrarOut = {
  host: string;
  port: number;
  transports: Array<string>;
  tls_port?: number | null;
  digest_algorithms: Array<string>;
};

export type RegistrationOut = {
  contact: string;
  received: ReceivedOut | null;
  behind_nat: boolean;
  path: Array<string>;
  registered_at: string;
  expires_at: string;
};

export type RoutingIn = {
  voice_url?: string | null;
  voice_method?: "POST" | "GET";
  fallback_url?: string | null;
  events_url?: string | null;
  callback_encoding?: "form" | "json" | null;
};

export type SettingsOut = {
  destination_allowlist: Array<string>;
  sip_host_allowlist: Array<string>;
  play_host_allowlist: Array<string>;
  max_concurrent_calls: number;
  max_calls_per_second: number;
  callback_encoding: "form" | "json";
  srtp: "optional" | "required";
  recording_format: "wav" | "mp3";
  storage_url: string | null;
  storage_credentials_set: boolean;
  retention_days: number;
  low_balance_threshold_minor: number;
  currency?: string;
};

export type SettingsPatch = {
  destination_allowlist?: Array<string>;
  sip_host_allowlist?: Array<string>;
  play_host_allowlist?: Array<string>;
  max_concurrent_calls?: number;
  max_calls_per_second?: number;
  callback_encoding?: "form" | "json";
  srtp?: "optional" | "required";
  recording_format?: "wav" | "mp3";
  storage_url?: string | null;
  storage_credentials?: StorageCredentials | null;
  retention_days?: number;
  low_balance_threshold_minor?: number;
};

export type StorageCredentials = {
  access_key: string;
  secret_key: string;
};

export type TokenIn = {
  identity: string;
  caller_id?: string | null;
  ttl?: number;
};

export type TokenOut = {
  token: string;
  expires_at: string;
  identity: string;
  sip_uri: string;
  ws_url: string | null;
  wss_url: string | null;
};

export type TopUpIn = {
  provider: "mpesa";
  amount_minor: number;
  currency: "KES";
  phone_e164: string;
};

export type TopUpOut = {
  id: string;
  provider: string;
  method: string;
  status: "pending" | "confirmed" | "failed";
  amount_minor: number;
  currency: string;
  phone_e164: string | null;
  account_reference: string | null;
  checkout_request_id: string | null;
  provider_reference: string | null;
  failure_reason: string | null;
  created_at: string;
  settled_at: string | null;
};

export type TopUpPage = Page<TopUpOut>;

export type TranscriptChannel = {
  channel: number;
  speaker: string | null;
  text: string;
  words: Array<TranscriptWord>;
};

export type TranscriptWord = {
  word: string;
  start: number;
  end: number;
  confidence: number;
};

export type TranscriptionOut = {
  id: string;
  recording_id: string;
  status: string;
  text: string | null;
  language: string | null;
  channels: Array<TranscriptChannel>;
  engine: string | null;
  error: string | null;
  created_at: string;
  completed_at: string | null;
};

export type TrunkList = {
  data: Array<TrunkOut>;
};

export type TrunkOut = {
  name: string;
  host: string;
  port: number;
  transport: string;
  prefixes: Array<string>;
  inbound_addresses: Array<string>;
  health: string;
  health_changed_at: string | null;
};

export type VoiceAction = VoicesayAction | VoiceplayAction | VoicegetDigitsAction | VoicedialAction | VoiceconferenceAction | VoicerecordAction | VoiceredirectAction | VoicerejectAction | VoicehangupAction | VoicepauseAction | VoicestreamAction | VoicegatherAction | VoiceenqueueAction | VoicedequeueAction | VoiceleaveAction;

export type VoiceCallbackForm = {
  CallId: string;
  WorkspaceId: string;
  From: string;
  To: string;
  Direction: "inbound" | "outbound";
  CallStatus: string;
  Digits?: string;
  SpeechResult?: string;
  Confidence?: string;
  RecordingSid?: string;
  RecordingUrl?: string;
  RecordingDuration?: string;
  RecordingChannels?: "1" | "2";
  DialCallId?: string;
  DialCallStatus?: string;
  DialCallDuration?: string;
  ConferenceName?: string;
  TranscriptionSid?: string;
  TranscriptionText?: string;
  TranscriptionStatus?: "completed" | "failed";
  AnsweredBy?: "human" | "machine_start" | "machine_end_beep" | "machine_end_silence" | "machine_end_other" | "fax" | "unknown";
  ErrorCode?: string;
  ErrorUrl?: string;
};

export type VoiceCallbackJson = {
  CallId: string;
  WorkspaceId: string;
  From: string;
  To: string;
  Direction: "inbound" | "outbound";
  CallStatus: string;
  Digits?: string;
  SpeechResult?: string;
  Confidence?: string;
  RecordingSid?: string;
  RecordingUrl?: string;
  RecordingDuration?: number;
  RecordingChannels?: number;
  DialCallId?: string;
  DialCallStatus?: string;
  DialCallDuration?: number;
  ConferenceName?: string;
  TranscriptionSid?: string;
  TranscriptionText?: string;
  TranscriptionStatus?: "completed" | "failed";
  AnsweredBy?: "human" | "machine_start" | "machine_end_beep" | "machine_end_silence" | "machine_end_other" | "fax" | "unknown";
  ErrorCode?: string;
  ErrorUrl?: string;
};

export type VoiceConference = {
  name: string;
  record?: boolean;
  beep?: boolean;
  muted?: boolean;
  startOnEnter?: boolean;
  endOnExit?: boolean;
  maxParticipants?: number;
  waitUrl?: string | null;
  statusEventsCallbackUrl?: string | null;
  statusEvents?: Array<"start" | "end" | "join" | "leave" | "mute" | "unmute"> | string;
};

export type VoiceDequeue = {
  name: string;
  timeout?: number;
  action?: string | null;
  method?: "POST" | "GET" | "post" | "get";
};

export type VoiceDial = {
  number?: string | Array<string> | null;
  sip?: string | Array<string> | null;
  callerId?: string | null;
  timeout?: number;
  record?: "do-not-record" | "record-from-answer" | "record-from-ringing";
  recordingChannels?: "mono" | "dual";
  action?: string | null;
  method?: "POST" | "GET" | "post" | "get";
  hangupOnStar?: boolean;
  queue?: string | null;
};

export type VoiceEnqueue = {
  name: string;
  waitUrl?: string | null;
  waitUrlMethod?: "POST" | "GET" | "post" | "get";
  action?: string | null;
  method?: "POST" | "GET" | "post" | "get";
  maxSize?: number | null;
  announcePosition?: boolean;
  announceWaitTime?: boolean;
  announceEvery?: number;
  language?: string;
};

export type VoiceGather = {
  numDigits?: number;
  finishOnKey?: string;
  timeout?: number;
  action?: string | null;
  method?: "POST" | "GET" | "post" | "get";
  nested?: Array<VoicesayAction | VoiceplayAction>;
  input?: Array<"dtmf" | "speech"> | string;
  speechTimeout?: "auto" | number | null;
  hints?: Array<string> | string;
  language?: string;
  partialResultCallback?: string | null;
};

export type VoiceGetDigits = {
  numDigits?: number;
  finishOnKey?: string;
  timeout?: number;
  action?: string | null;
  method?: "POST" | "GET" | "post" | "get";
  nested?: Array<VoicesayAction | VoiceplayAction>;
  input?: Array<"dtmf" | "speech"> | string;
  speechTimeout?: "auto" | number | null;
  hints?: Array<string> | string;
  language?: string;
  partialResultCallback?: string | null;
};

export type VoiceHangup = Record<string, unknown>;

export type VoiceLeave = Record<string, unknown>;

export type VoicePause = {
  length?: number;
};

export type VoicePlay = {
  url: string;
  loop?: number;
};

export type VoiceRecord = {
  action?: string | null;
  method?: "POST" | "GET" | "post" | "get";
  timeout?: number;
  maxLength?: number;
  finishOnKey?: string;
  playBeep?: boolean;
  trim?: "trim-silence" | "do-not-trim";
  transcribe?: boolean;
  transcribeCallback?: string | null;
};

export type VoiceRedirect = {
  url: string;
  method?: "POST" | "GET" | "post" | "get";
};

export type VoiceReject = {
  reason?: "rejected" | "busy";
};

export type VoiceSay = {
  text: string;
  language?: string;
  voice?: string | null;
  loop?: number;
};

export type VoiceStream = {
  url: string;
  track?: "inbound" | "outbound" | "both";
  bidirectional?: boolean;
  subprotocol?: "audio.drachtio.org" | null;
  name?: string | null;
  parameters?: Record<string, string>;
  statusCallback?: string | null;
  statusCallbackMethod?: "POST" | "GET" | "post" | "get";
  action?: string | null;
  method?: "POST" | "GET" | "post" | "get";
};

export type VoiceconferenceAction = {
  conference: VoiceConference;
};

export type VoicedequeueAction = {
  dequeue: VoiceDequeue;
};

export type VoicedialAction = {
  dial: VoiceDial;
};

export type VoiceenqueueAction = {
  enqueue: VoiceEnqueue;
};

export type VoicegatherAction = {
  gather: VoiceGather;
};

export type VoicegetDigitsAction = {
  getDigits: VoiceGetDigits;
};

export type VoicehangupAction = {
  hangup: VoiceHangup;
};

export type VoiceleaveAction = {
  leave: VoiceLeave;
};

export type VoicepauseAction = {
  pause: VoicePause;
};

export type VoiceplayAction = {
  play: VoicePlay;
};

export type VoicerecordAction = {
  record: VoiceRecord;
};

export type VoiceredirectAction = {
  redirect: VoiceRedirect;
};

export type VoicerejectAction = {
  reject: VoiceReject;
};

export type VoicesayAction = {
  say: VoiceSay;
};

export type VoicestreamAction = {
  stream: VoiceStream;
};

export type WalletBalance = {
  balance_minor: number;
  available_minor: number;
  currency: string;
  low_balance_threshold_minor: number;
};

export type WalletEntryOut = {
  id: string;
  entry_type: string;
  amount_minor: number;
  balance_after_minor: number;
  currency: string;
  call_id: string | null;
  number_id: string | null;
  reference: string | null;
  idempotency_key: string;
  created_at: string;
};

export type WalletEntryPage = Page<WalletEntryOut>;

export type WebhookCreated = WebhookOut & {
  secret: string;
};

export type WebhookIn = {
  url: string;
  events: Array<"*" | "call.answered" | "call.completed" | "call.failed" | "call.funds_low" | "call.recording.ready" | "call.ringing" | "call.started" | "call.transcription.ready" | "number.provisioned" | "number.released" | "number.suspended" | "queue.joined" | "queue.left" | "wallet.low_balance" | "wallet.top_up">;
};

export type WebhookOut = {
  id: string;
  url: string;
  events: Array<string>;
  created_at: string;
};

export type WebhookPage = Page<WebhookOut>;

export type WorkspaceIn = {
  name: string;
};

export type WorkspaceOut = {
  id: string;
  name: string;
  created_at: string;
  scopes: Array<string>;
  signing_secret?: string | null;
};
