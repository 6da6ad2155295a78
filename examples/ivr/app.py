"""A small phone menu (IVR) in English and Swahili, built with ``sautikit_sdk.actions``.

Point a number's ``voice_url`` at ``/ivr/welcome``. The caller hears the menu while
``getDigits`` waits for one key, and the key is posted as ``Digits`` to ``/ivr/menu``:

* 1 — opening hours;
* 2 — speak to an agent (``dial``, the caller's number shown to the agent);
* 3 — leave a message (``record``, which another app such as examples/voicemail takes);
* 9 — the same menu in Swahili (``language: "sw"``).

No key within the timeout: the next action after ``getDigits`` runs and says goodbye.
``python app.py`` runs it; see README.md for the settings.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any, Literal

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request

from sautikit_sdk.actions import Action, dial, get_digits, hangup, record, redirect, response, say
from sautikit_sdk.webhooks import (
    SIGNATURE_HEADER,
    WebhookVerificationError,
    callback_fields,
    verify,
)

log = logging.getLogger("ivr")

Language = Literal["en", "sw"]

# What the caller hears, per language: (BCP-47 tag, phrases).
PHRASES: dict[Language, dict[str, str]] = {
    "en": {
        "tag": "en-US",
        "menu": "Welcome to Acme. For opening hours, press 1. To speak to an agent, press 2. "
        "To leave a message, press 3. Kwa Kiswahili, bonyeza 9.",
        "hours": "We are open Monday to Friday, from eight in the morning to five in the evening.",
        "connecting": "Please hold while we connect you.",
        "message": "Please leave your message after the tone, then press the hash key.",
        "invalid": "Sorry, that is not an option.",
        "goodbye": "We did not get your choice. Goodbye.",
    },
    "sw": {
        "tag": "sw",
        "menu": "Karibu Acme. Kwa saa za kazi, bonyeza 1. Kuongea na wakala, bonyeza 2. "
        "Kuacha ujumbe, bonyeza 3.",
        "hours": "Tuko wazi Jumatatu hadi Ijumaa, kuanzia saa mbili asubuhi hadi saa kumi na "
        "moja jioni.",
        "connecting": "Tafadhali subiri tukuunganishe.",
        "message": "Tafadhali acha ujumbe wako baada ya mlio, kisha bonyeza alama ya reli.",
        "invalid": "Samahani, hilo si chaguo.",
        "goodbye": "Hatukupata chaguo lako. Kwaheri.",
    },
}


@dataclass(frozen=True)
class IvrSettings:
    agent_number: str = "+254720000001"
    message_url: str | None = None  # the voicemail app's /voicemail/recording; None: no action
    public_url: str | None = None  # how Sautikit reaches this app; None: the request's host
    signing_secret: str | None = None  # None: signatures are not checked (development only)

    @classmethod
    def from_env(cls) -> IvrSettings:
        return cls(
            agent_number=os.environ.get("AGENT_NUMBER", cls.agent_number),
            message_url=os.environ.get("IVR_MESSAGE_URL") or None,
            public_url=os.environ.get("IVR_PUBLIC_URL") or None,
            signing_secret=os.environ.get("SAUTIKIT_SIGNING_SECRET") or None,
        )


def create_app(settings: IvrSettings | None = None) -> FastAPI:
    settings = settings or IvrSettings.from_env()
    if settings.signing_secret is None:
        log.warning("SAUTIKIT_SIGNING_SECRET is unset: request signatures are NOT checked")

    async def require_signature(request: Request) -> None:
        if settings.signing_secret is None:
            return
        try:
            verify(
                await request.body(), request.headers.get(SIGNATURE_HEADER), settings.signing_secret
            )
        except WebhookVerificationError as refused:
            raise HTTPException(status_code=401, detail=str(refused)) from None

    def url(request: Request, path: str) -> str:
        return (settings.public_url or str(request.base_url)).rstrip("/") + path

    def menu(request: Request, language: Language) -> list[Action]:
        phrases = PHRASES[language]
        return [
            get_digits(
                nested=[say(phrases["menu"], language=phrases["tag"])],
                num_digits=1,
                timeout=5,
                action=url(request, f"/ivr/menu?lang={language}"),
            ),
            say(phrases["goodbye"], language=phrases["tag"]),
        ]

    app = FastAPI(title="Sautikit IVR example", dependencies=[Depends(require_signature)])

    @app.post("/ivr/welcome")
    async def welcome(request: Request, lang: Language = "en") -> dict[str, Any]:
        return response(*menu(request, lang))

    @app.post("/ivr/menu")
    async def choice(request: Request, lang: Language = "en") -> dict[str, Any]:
        """``Digits`` holds the key the caller pressed."""
        fields = callback_fields(
            await request.body(), request.headers.get("content-type"), request.url.query
        )
        phrases, tag = PHRASES[lang], PHRASES[lang]["tag"]
        digits = str(fields.get("Digits", ""))
        if digits == "1":
            return response(say(phrases["hours"], language=tag), hangup())
        if digits == "2":
            return response(
                say(phrases["connecting"], language=tag),
                dial(number=settings.agent_number, caller_id=fields.get("From")),
            )
        if digits == "3":
            return response(
                say(phrases["message"], language=tag),
                record(action=settings.message_url, finish_on_key="#", max_length=120),
            )
        if digits == "9" and lang == "en":
            return response(*menu(request, "sw"))
        return response(
            say(phrases["invalid"], language=tag),
            redirect(url(request, f"/ivr/welcome?lang={lang}")),
        )

    return app


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    uvicorn.run(
        create_app(),
        host=os.environ.get("HOST", "127.0.0.1"),
        port=int(os.environ.get("PORT", "3002")),
    )
