"""Sautikit's RTP media engine: codecs, DTMF, jitter buffer, the media clock, players and mixers."""
