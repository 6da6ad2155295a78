// The client against a real `sautikit serve`: tests/sdk/test_node_sdk.py starts one, seeds
// a workspace (key, funded wallet, NUMBER, a trunk for +254) and runs this file with
// SAUTIKIT_TEST_API_URL, SAUTIKIT_TEST_API_KEY, SAUTIKIT_TEST_NUMBER and SAUTIKIT_TEST_CALLEE.
import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer } from "node:http";
import { describe, test } from "node:test";

import { Sautikit, SautikitError, verifyWebhook } from "../index.mjs";

const { SAUTIKIT_TEST_API_URL: baseUrl, SAUTIKIT_TEST_API_KEY: apiKey } = process.env;
const { SAUTIKIT_TEST_NUMBER: number, SAUTIKIT_TEST_CALLEE: callee } = process.env;
const skip = baseUrl && apiKey ? false : "no server: run through tests/sdk/test_node_sdk.py";

describe("against sautikit serve", { skip }, () => {
  const client = new Sautikit({ apiKey, baseUrl });

  test("the key's workspace and the seeded number", async () => {
    const workspace = await client.workspace.get();
    assert.equal(typeof workspace.id, "string");
    const numbers = await client.numbers.list().all();
    const mine = numbers.find((item) => item.number === number);
    assert.ok(mine, `${number} is listed: ${JSON.stringify(numbers)}`);
    assert.equal((await client.numbers.get(mine.id)).number, number);
    const routed = await client.numbers.updateRouting(mine.id, { voice_url: "http://127.0.0.1:9/voice" });
    assert.equal(routed.voice_url, "http://127.0.0.1:9/voice");
  });

  test("a call is placed once per Idempotency-Key, then read and listed", async () => {
    const params = { to: callee, from: number, action_url: "http://127.0.0.1:9/answer", timeout: 5 };
    const idempotencyKey = `node-sdk-${Date.now()}`;
    const call = await client.calls.create(params, { idempotencyKey });
    assert.equal(call.status, "queued");
    assert.equal(call.from, number);
    const again = await client.calls.create(params, { idempotencyKey });
    assert.equal(again.id, call.id);
    assert.equal((await client.calls.get(call.id)).id, call.id);
    const listed = await client.calls.list({ limit: 1 }).page();
    assert.ok(Array.isArray(listed.data));
    assert.ok((await client.calls.list({ to: callee }).all()).some((item) => item.id === call.id));
  });

  test("webhooks: create shows the secret once, then get, list, delete", async () => {
    const created = await client.webhooks.create({ url: "http://127.0.0.1:9/events", events: ["call.completed"] });
    assert.equal(typeof created.secret, "string");
    const fetched = await client.webhooks.get(created.id);
    assert.deepEqual(fetched.events, ["call.completed"]);
    assert.equal(fetched.secret, undefined);
    assert.ok((await client.webhooks.list().all()).some((item) => item.id === created.id));
    await client.webhooks.delete(created.id);
    await assert.rejects(client.webhooks.get(created.id), { name: "SautikitError", status: 404 });
  });

  test("SIP credentials: the password shows on create and rotate only", async () => {
    const mine = (await client.numbers.list().all()).find((item) => item.number === number);
    const created = await client.sipCredentials.create(mine.id, {});
    assert.equal(typeof created.password, "string");
    assert.equal((await client.sipCredentials.get(mine.id, created.id)).password, undefined);
    assert.ok((await client.sipCredentials.list(mine.id).all()).some((item) => item.id === created.id));
    const rotated = await client.sipCredentials.rotate(mine.id, created.id);
    assert.notEqual(rotated.password, created.password);
    await client.sipCredentials.delete(mine.id, rotated.id);
  });

  test("settings, wallet, pricing, conferences and queues answer", async () => {
    const settings = await client.settings.get();
    assert.ok(Array.isArray(settings.destination_allowlist));
    const wallet = await client.wallet.balance();
    assert.ok(wallet.balance_minor > 0);
    assert.ok(Array.isArray((await client.wallet.transactions({ limit: 2 }).page()).data));
    assert.equal(typeof (await client.pricing.get()), "object");
    assert.deepEqual(await client.conferences.list().all(), []);
    assert.deepEqual(await client.queues.list().all(), []);
  });

  test("the server's event deliveries pass verifyWebhook with the subscription's secret", async () => {
    const received = [];
    let arrived;
    const first = new Promise((resolve) => (arrived = resolve));
    const receiver = createServer((request, reply) => {
      const chunks = [];
      request.on("data", (chunk) => chunks.push(chunk));
      request.on("end", () => {
        received.push({ raw: Buffer.concat(chunks), headers: request.headers });
        reply.writeHead(204).end();
        arrived();
      });
    });
    receiver.listen(0, "127.0.0.1");
    await once(receiver, "listening");
    const url = `http://127.0.0.1:${receiver.address().port}/events`;
    const subscription = await client.webhooks.create({ url, events: ["*"] });
    try {
      await client.calls.create({ to: callee, from: number, action_url: "http://127.0.0.1:9/answer", timeout: 5 });
      let timer;
      const late = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error("no delivery in 30 s")), 30_000)));
      await Promise.race([first, late]).finally(() => clearTimeout(timer));
      const [{ raw, headers }] = received;
      assert.equal(verifyWebhook(raw, headers, subscription.secret), true);
      assert.throws(() => verifyWebhook(raw, headers, "whsec_other"), /does not match/);
      assert.match(headers["x-sautikit-event"], /^call\./);
      assert.equal(JSON.parse(raw.toString("utf8")).kind, headers["x-sautikit-event"]);
    } finally {
      await client.webhooks.delete(subscription.id);
      receiver.closeAllConnections();
      receiver.close();
    }
  });

  test("recordings list is a page", async () => {
    const page = await client.recordings.list({ limit: 5 }).page();
    assert.ok(Array.isArray(page.data));
    assert.ok(page.next_cursor === null || typeof page.next_cursor === "string");
  });

  test("errors carry the envelope's code, message and status", async () => {
    await assert.rejects(client.calls.get("00000000-0000-0000-0000-000000000000"), (error) => {
      assert.ok(error instanceof SautikitError);
      assert.equal(error.status, 404);
      assert.match(error.code, /not_found/);
      assert.ok(error.message.length > 0);
      return true;
    });
    await assert.rejects(client.calls.create({ to: callee, from: number, action_url: "not a url" }), (error) => {
      assert.equal(error.status, 400);
      assert.match(error.code, /^validation\./);
      return true;
    });
    const stranger = new Sautikit({ apiKey: "sk_live_wrong", baseUrl });
    await assert.rejects(stranger.workspace.get(), { status: 401 });
  });
});
