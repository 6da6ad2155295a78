// The ESM entry point: the same implementation as index.cjs (one copy of every rule).
import sdk from "./index.cjs";

export const {
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
} = sdk;
export default sdk;
