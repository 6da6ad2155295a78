// The action builders write the same document as sautikit.actions (fixtures/python.json).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { test } from "node:test";

import { actions } from "../index.mjs";

const fixture = JSON.parse(readFileSync(new URL("./fixtures/python.json", import.meta.url), "utf8"));
const { dial, getDigits, hangup, play, record, redirect, response, say } = actions;

test("the builders answer the document Python's builders answer", () => {
  const document = response(
    say("Karibu", { language: "sw", loop: 2 }),
    getDigits({
      nested: [play("https://cdn.example.com/menu.wav")],
      numDigits: 1,
      finishOnKey: "#",
      action: "https://app.example.com/menu",
    }),
    record({ action: "https://app.example.com/rec", maxLength: 60, playBeep: true, transcribe: true }),
    dial({
      number: ["+254720000001", "+254720000002"],
      callerId: "+254700000001",
      record: "record-from-answer",
      hangupOnStar: true,
    }),
    redirect("https://app.example.com/next", { method: "GET" }),
    hangup(),
  );
  assert.deepEqual(document, fixture.action_document);
});

test("parameters left out (or undefined) are not written", () => {
  assert.deepEqual(actions.record({ timeout: undefined }), { record: {} });
  assert.deepEqual(actions.pause(), { pause: {} });
  assert.deepEqual(actions.reject("busy"), { reject: { reason: "busy" } });
  assert.deepEqual(actions.enqueue("support", { waitUrl: "https://a.example/w" }), {
    enqueue: { name: "support", waitUrl: "https://a.example/w" },
  });
});

test("require() loads the same implementation as import", () => {
  const required = createRequire(import.meta.url)("../index.cjs");
  assert.equal(required.actions, actions);
});
