"""Recordings: what happens to a call's audio after it is captured, transcription included."""
