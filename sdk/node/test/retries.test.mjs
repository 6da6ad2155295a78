// Retries, Idempotency-Key and the error envelope, against a scripted HTTP server on loopback.
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { test } from "node:test";

import { Sautikit, SautikitError, parseRetryAfter } from "../index.mjs";

/** A server answering `script` in turn (then 200 `{}`), recording each request it got. */
async function scripted(script) {
  const seen = [];
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      seen.push({ method: request.method, url: request.url, headers: request.headers, body, at: Date.now() });
      const [status, headers, answer] = script.shift() ?? [200, {}, {}];
      response.writeHead(status, { "content-type": "application/json", ...headers });
      response.end(JSON.stringify(answer));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const client = new Sautikit({ apiKey: "sk_test", baseUrl: `http://127.0.0.1:${server.address().port}/`, retryBackoff: 1 });
  return { client, seen, close: () => new Promise((resolve) => server.close(resolve)) };
}

const busy = (retryAfter) => [503, { "retry-after": retryAfter }, { error: { code: "service.busy", message: "the server is busy; retry" } }];

test("a POST is retried after 503 and 429 with one Idempotency-Key, honouring Retry-After", async () => {
  const limited = [429, { "retry-after": "1" }, { error: { code: "rate_limited", message: "slow down" } }];
  const { client, seen, close } = await scripted([busy("0"), limited, [201, {}, { id: "call_1", status: "queued" }]]);
  try {
    const call = await client.calls.create({ to: "+254720000001", from: "+254700000001", action_url: "https://a.example/x" });
    assert.deepEqual(call, { id: "call_1", status: "queued" });
    assert.equal(seen.length, 3);
    const keys = new Set(seen.map((request) => request.headers["idempotency-key"]));
    assert.equal(keys.size, 1);
    assert.match([...keys][0], /^[0-9a-f-]{36}$/);
    assert.ok(seen[2].at - seen[1].at >= 900, "the 429's Retry-After: 1 was waited for");
    assert.equal(seen[0].headers.authorization, "Bearer sk_test");
    assert.equal(seen[0].url, "/v1/calls");
    assert.deepEqual(JSON.parse(seen[0].body), { to: "+254720000001", from: "+254700000001", action_url: "https://a.example/x" });
  } finally {
    await close();
  }
});

test("a given Idempotency-Key is sent as is; GETs carry none", async () => {
  const { client, seen, close } = await scripted([]);
  try {
    await client.webhooks.create({ url: "https://a.example/e", events: ["*"] }, { idempotencyKey: "mine-1" });
    await client.calls.get("call 1/2");
    assert.equal(seen[0].headers["idempotency-key"], "mine-1");
    assert.equal(seen[1].headers["idempotency-key"], undefined);
    assert.equal(seen[1].url, "/v1/calls/call%201%2F2");
  } finally {
    await close();
  }
});

test("after the last retry the envelope comes back as a SautikitError", async () => {
  const { client, seen, close } = await scripted([busy("0"), busy("0"), busy("0")]);
  try {
    await assert.rejects(client.calls.list().page(), (error) => {
      assert.ok(error instanceof SautikitError);
      assert.equal(error.status, 503);
      assert.equal(error.code, "service.busy");
      assert.equal(error.message, "the server is busy; retry");
      assert.equal(error.retryAfter, 0);
      return true;
    });
    assert.equal(seen.length, 3);
  } finally {
    await close();
  }
});

test("a 400 is not retried and names its field", async () => {
  const invalid = [400, { "x-request-id": "req_9" }, { error: { code: "validation.invalid_field", message: "to must be E.164", field: "to" } }];
  const { client, seen, close } = await scripted([invalid]);
  try {
    await assert.rejects(client.calls.create({ to: "x", from: "y", action_url: "z" }), {
      name: "SautikitError",
      status: 400,
      code: "validation.invalid_field",
      field: "to",
      requestId: "req_9",
    });
    assert.equal(seen.length, 1);
  } finally {
    await close();
  }
});

test("Retry-After as seconds or an HTTP date", () => {
  assert.equal(parseRetryAfter("3"), 3);
  assert.equal(parseRetryAfter(null), null);
  assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4_000), 6);
});

test("no answer at all is a SautikitError after the retries", async () => {
  const { client: unused, close } = await scripted([]);
  const closedPort = new URL(unused.baseUrl).port;
  await close();
  const client = new Sautikit({ apiKey: "k", baseUrl: `http://127.0.0.1:${closedPort}`, maxRetries: 1, retryBackoff: 1 });
  await assert.rejects(client.workspace.get(), (error) => error instanceof SautikitError && error.status === null);
});
