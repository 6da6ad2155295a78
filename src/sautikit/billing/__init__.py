"""Money and permission around calls (SPEC §6, §8).

* ``ledger`` — the prepaid KES wallet: append-only entries, reservations for live calls,
  settling a call at hangup, charging transcription and number rental.
* ``rating`` — the rate deck: which per-minute price applies to a destination, and the
  per-second price of a duration.
* ``rates_import`` — parsing an operator's rate deck CSV, line by line.
* ``numbers`` and ``authorisation`` — the number inventory and the destination checks.

Modules are imported by name; this package re-exports nothing, so importing one part
never drags in the others.
"""
