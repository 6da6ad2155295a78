"""Accuracy of answering-machine detection on a clip set made here with espeak-ng and sox.

``benchmarks/amd_clips`` holds what a callee's line might sound like in its first seconds:
recorded greetings of several lengths (with a beep at the end, or silence), short human
answers followed by silence, silence and line hiss, and a fax's calling tone. ``labels.json``
says what each one is. Every clip is classified with ``machineDetection`` ``Enable`` (a
machine is ``machine_start``) and ``DetectMessageEnd`` (``machine_end_beep`` /
``machine_end_silence``).

Usage:
    .venv/bin/python benchmarks/amd.py               # the accuracy table
    .venv/bin/python benchmarks/amd.py --make-clips  # remake the WAVs (espeak-ng, sox)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
from pathlib import Path

from sautikit.media.audio import load_wav
from sautikit.voice.amd import AmdSettings, classify

CLIPS = Path(__file__).resolve().parent / "amd_clips"
LABELS = CLIPS / "labels.json"

# (file, kind, what is said or None, voice, what follows, seconds of silence after)
# kind: machine | human | silence | noise | fax; "follows": beep frequency in Hz, or 0.
SET: list[tuple[str, str, str | None, str, int, float]] = [
    (
        "machine-01.wav",
        "machine",
        (
            "Hi, you have reached John. I cannot take your call right now. Please leave a message "
            "after the tone."
        ),
        "en-us",
        1000,
        2.0,
    ),
    (
        "machine-02.wav",
        "machine",
        (
            "Thank you for calling Acme Supplies. Our office is closed. Our hours are "
            "eight to five, Monday to Friday. Please leave your name and number."
        ),
        "en-us+f3",
        1400,
        2.0,
    ),
    (
        "machine-03.wav",
        "machine",
        "The person you are calling is not available. Please leave a message.",
        "en-us",
        0,
        3.0,
    ),
    (
        "machine-04.wav",
        "machine",
        (
            "Hello, this is Wanjiru. Sorry I missed you. Leave me a message and I will "
            "call you back as soon as I can."
        ),
        "en-us+f2",
        0,
        3.0,
    ),
    (
        "machine-05.wav",
        "machine",
        (
            "You have reached the accounts office. Nobody is here to take your call. Please speak "
            "after the beep."
        ),
        "en-us+f4",
        850,
        2.0,
    ),
    (
        "machine-06.wav",
        "machine",
        "Hello. You have reached Peter and Grace. We are not home. Leave a message.",
        "en-gb",
        1000,
        2.0,
    ),
    (
        "machine-07.wav",
        "machine",
        (
            "Welcome. The subscriber cannot be reached. Please try again later or leave a voice "
            "message after the tone."
        ),
        "en-us+m3",
        1200,
        2.0,
    ),
    (
        "machine-08.wav",
        "machine",
        "Hey, it is Sam. Text me instead, I never check these. Or leave a message, whatever.",
        "en-us+m2",
        0,
        3.0,
    ),
    ("human-01.wav", "human", "Hello?", "en-us", 0, 4.0),
    ("human-02.wav", "human", "Yes, speaking.", "en-us+f3", 0, 4.0),
    ("human-03.wav", "human", "Hello, who is this?", "en-us+m3", 0, 4.0),
    ("human-04.wav", "human", "Hi.", "en-gb", 0, 4.0),
    ("human-05.wav", "human", "Good morning, this is Mary.", "en-us+f2", 0, 4.0),
    ("human-06.wav", "human", "Hello.", "en-us+f4", 0, 4.0),
    ("human-07.wav", "human", "Yes?", "en-us+m2", 0, 4.0),
    ("human-08.wav", "human", "Hello, Otieno here.", "en-us", 0, 4.0),
    # Hard cases the timing rules get wrong by design: a greeting shorter than the
    # speech threshold, and a person who answers at length.
    ("machine-09.wav", "machine", "Leave a message.", "en-us", 0, 3.0),
    (
        "human-09.wav",
        "human",
        "Hello, yes, this is the accounts department, how can I help you today?",
        "en-us+f3",
        0,
        4.0,
    ),
    ("silence-01.wav", "silence", None, "", 0, 7.0),
    ("noise-01.wav", "noise", None, "", 0, 7.0),
    ("fax-01.wav", "fax", None, "", 0, 0.0),
]

EXPECTED = {
    "Enable": {
        "machine": "machine_start",
        "human": "human",
        "silence": "unknown",
        "noise": "unknown",
        "fax": "fax",
    },
    "DetectMessageEnd": {"human": "human", "silence": "unknown", "noise": "unknown", "fax": "fax"},
}


def _sox(*arguments: str) -> None:
    subprocess.run(["sox", *arguments], check=True, capture_output=True)


def make_clips() -> None:
    labels = []
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work)
        for name, kind, text, voice, beep, after in SET:
            parts: list[str] = []
            lead = folder / f"{name}-lead.wav"
            _sox("-n", "-r", "8000", "-b", "16", "-c", "1", str(lead), "trim", "0", "0.4")
            parts.append(str(lead))
            if text is not None:
                spoken = folder / f"{name}-espeak.wav"
                subprocess.run(
                    ["espeak-ng", "-v", voice, "-s", "160", "-w", str(spoken), text], check=True
                )
                narrow = folder / f"{name}-8k.wav"
                # Telephone band, 8 kHz, and the level of a phone line.
                _sox(
                    str(spoken),
                    "-r",
                    "8000",
                    "-b",
                    "16",
                    "-c",
                    "1",
                    str(narrow),
                    "sinc",
                    "300-3400",
                    "norm",
                    "-6",
                )
                parts.append(str(narrow))
            if beep:
                tone = folder / f"{name}-beep.wav"
                _sox(
                    "-n",
                    "-r",
                    "8000",
                    "-b",
                    "16",
                    "-c",
                    "1",
                    str(tone),
                    "synth",
                    "0.5",
                    "sine",
                    str(beep),
                    "vol",
                    "0.4",
                )
                gap = folder / f"{name}-gap.wav"
                _sox("-n", "-r", "8000", "-b", "16", "-c", "1", str(gap), "trim", "0", "0.3")
                parts += [str(gap), str(tone)]
            if kind == "fax":
                for index in range(2):  # CNG: 1100 Hz, 0.5 s on, 3 s off
                    cng = folder / f"{name}-cng{index}.wav"
                    _sox(
                        "-n",
                        "-r",
                        "8000",
                        "-b",
                        "16",
                        "-c",
                        "1",
                        str(cng),
                        "synth",
                        "0.5",
                        "sine",
                        "1100",
                        "vol",
                        "0.3",
                        "pad",
                        "0",
                        "3",
                    )
                    parts.append(str(cng))
            tail = folder / f"{name}-tail.wav"
            if kind == "noise":
                _sox(
                    "-n",
                    "-r",
                    "8000",
                    "-b",
                    "16",
                    "-c",
                    "1",
                    str(tail),
                    "synth",
                    str(after),
                    "whitenoise",
                    "vol",
                    "0.002",
                )
            else:
                _sox("-n", "-r", "8000", "-b", "16", "-c", "1", str(tail), "trim", "0", str(after))
            parts.append(str(tail))
            _sox(*parts, str(CLIPS / name))
            ending = "beep" if beep else "silence"
            labels.append(
                {
                    "file": name,
                    "kind": kind,
                    "text": text,
                    "voice": voice,
                    "ends_with": ending if kind == "machine" else None,
                }
            )
            print(name)
    LABELS.write_text(
        json.dumps(
            {
                "description": "Made by benchmarks/amd.py --make-clips (espeak-ng, sox), 8 kHz.",
                "clips": labels,
            },
            indent=1,
        )
        + "\n"
    )


def expected(mode: str, clip: dict[str, str | None]) -> str:
    if mode == "DetectMessageEnd" and clip["kind"] == "machine":
        return "machine_end_beep" if clip["ends_with"] == "beep" else "machine_end_silence"
    return EXPECTED[mode][str(clip["kind"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--make-clips", action="store_true")
    args = parser.parse_args()
    if args.make_clips:
        make_clips()
        return
    clips = json.loads(LABELS.read_text())["clips"]
    print(f"{'clip':<16} {'kind':<8} {'Enable':<22} {'DetectMessageEnd':<22}")
    right = {"Enable": 0, "DetectMessageEnd": 0}
    for clip in clips:
        samples = load_wav(CLIPS / clip["file"])
        cells = []
        for mode in ("Enable", "DetectMessageEnd"):
            verdict = classify(samples, AmdSettings(detect_message_end=mode == "DetectMessageEnd"))
            good = verdict == expected(mode, clip)
            right[mode] += good
            cells.append(f"{verdict}{'' if good else ' ✗'}")
        print(f"{clip['file']:<16} {clip['kind']:<8} {cells[0]:<22} {cells[1]:<22}")
    for mode, count in right.items():
        print(f"{mode}: {count}/{len(clips)} = {count / len(clips):.0%}")


if __name__ == "__main__":
    main()
