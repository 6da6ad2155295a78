"""The call lifecycle (SPEC §4, §6, §8): every call from INVITE or API request to hangup.

* :mod:`~sautikit.calls.status` — the call status ``StrEnum`` and its transition table.
* :mod:`~sautikit.calls.records` — call rows and their events, written together.
* :mod:`~sautikit.calls.admission` — the one admission path of every new call: number
  owner, destination authorisation, limits (:mod:`~sautikit.calls.limits`), funding.
* :mod:`~sautikit.calls.funding` — how long a live call may last on what it holds.
* :mod:`~sautikit.calls.routing` — carrier trunks, and numbers in E.164.
* :mod:`~sautikit.calls.registry` — the live calls of this process and their tasks.
* :mod:`~sautikit.calls.placement` — API calls once queued, and ``dial`` child legs.
* :mod:`~sautikit.calls.inbound` — calls from the network to a workspace's number.
* :mod:`~sautikit.calls.devices` — registered SIP devices: digest, calling out, ringing.
* :mod:`~sautikit.calls.bridging` — two legs joined until one hangs up.
* :mod:`~sautikit.calls.application` — the app's actions run on a live call.
* :mod:`~sautikit.calls.recovery` — what a crashed run left live, closed at start.
* :mod:`~sautikit.calls.manager` — :class:`CallManager`, which builds and joins them.

The package sits above :mod:`sautikit.voice` (the interpreter and ``LiveCall``), the PBX,
billing and the database; none of those imports it. This module imports nothing, so
``billing`` and ``api`` may import a submodule without loading the rest.
"""
