"""Programmable calls: the voice-action language (SPEC §3) and its interpreter.

* :mod:`~sautikit.voice.actions` — the action document's schema and validating parser.
* :mod:`~sautikit.voice.callbacks` — signed requests to the app's URLs.
* :mod:`~sautikit.voice.control` — the call-control interface the PBX implements, and the
  recording sink the recording pipeline implements.
* :mod:`~sautikit.voice.prompts` — ``play`` audio: allow-listed, fetched, decoded, cached.
* :mod:`~sautikit.voice.interpreter` — runs a call's actions, failures included.
* :mod:`~sautikit.voice.live` — ``CallControl`` over a PBX call leg; :mod:`~sautikit.voice.rooms`
  — conference rooms.
* :mod:`~sautikit.voice.commands` — the command bus between the API and the process
  holding a call.

The call lifecycle around them — admission, placement, inbound routing, devices, call
rows and their status — is :mod:`sautikit.calls`, which uses this package; nothing here
imports it.
"""

from sautikit.voice.actions import ActionDocumentError, parse_action_document
from sautikit.voice.callbacks import AppClient, AppErrorKind, AppRequestError
from sautikit.voice.control import CallControl, CallEnded, RecordingSink
from sautikit.voice.interpreter import ApplicationError, Interpreter
from sautikit.voice.prompts import PromptCache, PromptError

__all__ = [
    "ActionDocumentError",
    "AppClient",
    "AppErrorKind",
    "AppRequestError",
    "ApplicationError",
    "CallControl",
    "CallEnded",
    "Interpreter",
    "PromptCache",
    "PromptError",
    "RecordingSink",
    "parse_action_document",
]
