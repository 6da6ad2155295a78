// A small phone menu (IVR) in English and Swahili, built with @sautikit/sdk: the Node
// twin of examples/ivr/app.py. Point a number's voice_url at /ivr/welcome; the key the
// caller presses arrives as Digits at /ivr/menu:
//   1 opening hours · 2 an agent (dial) · 3 leave a message (record) · 9 the menu in Swahili.
// No key within the timeout: the action after getDigits says goodbye.
// Zero dependencies besides the SDK: node:http, and the SDK's verifyWebhook/callbackFields.
import { createServer } from "node:http";

import { WebhookVerificationError, actions, callbackFields, verifyWebhook } from "@sautikit/sdk";

const { dial, getDigits, hangup, record, redirect, response, say } = actions;

const PHRASES = {
  en: {
    tag: "en-US",
    menu:
      "Welcome to Acme. For opening hours, press 1. To speak to an agent, press 2. " +
      "To leave a message, press 3. Kwa Kiswahili, bonyeza 9.",
    hours: "We are open Monday to Friday, from eight in the morning to five in the evening.",
    connecting: "Please hold while we connect you.",
    message: "Please leave your message after the tone, then press the hash key.",
    invalid: "Sorry, that is not an option.",
    goodbye: "We did not get your choice. Goodbye.",
  },
  sw: {
    tag: "sw",
    menu: "Karibu Acme. Kwa saa za kazi, bonyeza 1. Kuongea na wakala, bonyeza 2. Kuacha ujumbe, bonyeza 3.",
    hours: "Tuko wazi Jumatatu hadi Ijumaa, kuanzia saa mbili asubuhi hadi saa kumi na moja jioni.",
    connecting: "Tafadhali subiri tukuunganishe.",
    message: "Tafadhali acha ujumbe wako baada ya mlio, kisha bonyeza alama ya reli.",
    invalid: "Samahani, hilo si chaguo.",
    goodbye: "Hatukupata chaguo lako. Kwaheri.",
  },
};

const AGENT_NUMBER = process.env.AGENT_NUMBER || "+254720000001";
const MESSAGE_URL = process.env.IVR_MESSAGE_URL || undefined;
const PUBLIC_URL = process.env.IVR_PUBLIC_URL || undefined;
const SECRET = process.env.SAUTIKIT_SIGNING_SECRET || undefined;
if (!SECRET) console.warn("SAUTIKIT_SIGNING_SECRET is unset: request signatures are NOT checked");

function menu(base, lang) {
  const phrases = PHRASES[lang];
  return [
    getDigits({
      nested: [say(phrases.menu, { language: phrases.tag })],
      numDigits: 1,
      timeout: 5,
      action: `${base}/ivr/menu?lang=${lang}`,
    }),
    say(phrases.goodbye, { language: phrases.tag }),
  ];
}

function choice(base, lang, fields) {
  const phrases = PHRASES[lang];
  const language = phrases.tag;
  switch (fields.Digits ?? "") {
    case "1":
      return response(say(phrases.hours, { language }), hangup());
    case "2":
      return response(say(phrases.connecting, { language }), dial({ number: AGENT_NUMBER, callerId: fields.From }));
    case "3":
      return response(say(phrases.message, { language }), record({ action: MESSAGE_URL, finishOnKey: "#", maxLength: 120 }));
    case "9":
      if (lang === "en") return response(...menu(base, "sw"));
    // falls through: 9 in the Swahili menu is not an option
    default:
      return response(say(phrases.invalid, { language }), redirect(`${base}/ivr/welcome?lang=${lang}`));
  }
}

const server = createServer((request, reply) => {
  const chunks = [];
  request.on("data", (chunk) => chunks.push(chunk));
  request.on("end", () => {
    const raw = Buffer.concat(chunks); // the raw body: the signature covers these bytes
    const send = (status, body) => {
      reply.writeHead(status, { "content-type": "application/json" });
      reply.end(JSON.stringify(body));
    };
    if (SECRET) {
      try {
        verifyWebhook(raw, request.headers, SECRET);
      } catch (error) {
        if (error instanceof WebhookVerificationError) return send(401, { detail: error.message });
        throw error;
      }
    }
    const url = new URL(request.url, `http://${request.headers.host}`);
    const base = (PUBLIC_URL || url.origin).replace(/\/+$/, "");
    const lang = url.searchParams.get("lang") === "sw" ? "sw" : "en";
    if (request.method !== "POST") return send(405, { detail: "POST only" });
    if (url.pathname === "/ivr/welcome") return send(200, response(...menu(base, lang)));
    if (url.pathname === "/ivr/menu") {
      const fields = callbackFields(raw, request.headers["content-type"], url.search.slice(1));
      return send(200, choice(base, lang, fields));
    }
    return send(404, { detail: "not found" });
  });
});

const port = Number(process.env.PORT ?? 3002);
server.listen(port, process.env.HOST || "127.0.0.1", () => console.log(`IVR listening on ${port}`));
