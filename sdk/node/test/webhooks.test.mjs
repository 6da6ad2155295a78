// verifyWebhook against signatures the Python side made (fixtures/python.json is written
// and kept current by tests/sdk/test_node_sdk.py from sautikit.events.signing.sign).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { WebhookVerificationError, callbackFields, signWebhook, verifyWebhook } from "../index.mjs";

const fixture = JSON.parse(readFileSync(new URL("./fixtures/python.json", import.meta.url), "utf8"));
const { secret } = fixture;

test("accepts every signature Python made, from a Buffer, a string or a Headers", () => {
  for (const { body, timestamp, header } of fixture.signatures) {
    const now = timestamp + 10;
    assert.equal(verifyWebhook(Buffer.from(body), { "x-sautikit-signature": header }, secret, { now }), true);
    assert.equal(verifyWebhook(body, new Headers({ "X-Sautikit-Signature": header }), secret, { now }), true);
    assert.equal(verifyWebhook(new TextEncoder().encode(body), header, secret, { now }), true);
  }
});

test("signs as Python does", () => {
  for (const { body, timestamp, header } of fixture.signatures) {
    assert.equal(signWebhook(Buffer.from(body), secret, timestamp), header);
  }
});

test("refuses a changed body, another secret, stale or future times, bad headers", () => {
  const { body, timestamp, header } = fixture.signatures[0];
  const now = timestamp;
  const refused = (payload, value, key, options, pattern) =>
    assert.throws(() => verifyWebhook(payload, value, key, options), (error) => {
      assert.ok(error instanceof WebhookVerificationError);
      assert.match(error.message, pattern);
      return true;
    });
  refused(body + " ", header, secret, { now }, /does not match/);
  refused(body, header, "other", { now }, /does not match/);
  refused(body, header, secret, { now: now + 301 }, /301 s old/);
  refused(body, header, secret, { now: now - 301 }, /in the future/);
  refused(body, {}, secret, { now }, /missing/);
  refused(body, "t=1,v1", secret, { now }, /malformed/);
  refused(body, `t=${timestamp}`, secret, { now }, /no v1/);
  refused(body, header, "", { now }, /no secret/);
  refused({ parsed: true }, header, secret, { now }, /raw request body/);
});

test("one matching v1 among several (a rotated secret) is enough; unknown schemes are skipped", () => {
  const { body, timestamp, header } = fixture.signatures[1];
  const v1 = header.split("v1=")[1];
  const rotated = `t=${timestamp},v1=${"0".repeat(64)},v2=abc,v1=${v1}`;
  assert.equal(verifyWebhook(body, rotated, secret, { now: timestamp }), true);
});

test("callback fields come out as strings from a form, JSON or a query", () => {
  assert.deepEqual(callbackFields("CallSid=c2&Digits=1&SpeechResult=habari+yako", "application/x-www-form-urlencoded"), {
    CallSid: "c2",
    Digits: "1",
    SpeechResult: "habari yako",
  });
  assert.deepEqual(callbackFields('{"RecordingDuration":7,"CallSid":"c3"}', "application/json; charset=utf-8"), {
    RecordingDuration: "7",
    CallSid: "c3",
  });
  assert.deepEqual(callbackFields("", null, "CallSid=c4"), { CallSid: "c4" });
  assert.throws(() => callbackFields("x", "text/plain"), /neither a form nor JSON/);
});
