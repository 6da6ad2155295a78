"""Sautikit's SIP stack: messages, transports, transactions, dialogs, digest auth, SDP."""
