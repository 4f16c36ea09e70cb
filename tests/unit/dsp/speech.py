"""Speech for talk-off tests: espeak-ng voices resampled to 8 kHz by sox, cached per user.

The cache key covers the texts, voices and tool options, so changing any of them regenerates.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import numpy.typing as npt

TEXTS = {
    "en": (
        "Good morning, you have reached the service desk. All of our agents are busy right now, "
        "so please stay on the line and the next available person will answer your call. "
        "If you know the extension of the person you want, you may dial it at any time. "
        "Opening hours are from eight in the morning until half past four in the afternoon, "
        "Monday through Friday. Thank you for waiting, and have a pleasant day.",
        "The quick brown fox jumps over the lazy dog while seven wild zebras wander quietly "
        "across the sunny plain. Meanwhile the old fisherman mended his nets, whistling a long "
        "tune that rose and fell like the waves. Children were singing, a telephone rang twice, "
        "and somewhere far away a church bell counted the hours: one, two, three, four, five, "
        "six, seven, eight, nine, ten, eleven and twelve.",
        "Please write down the following numbers: four five, one two, three four, five six, "
        "seven eight, nine zero. Your reference is hash seven seven, star nine one. "
        "Repeat, your reference is hash seven seven, star nine one. Whistles, hisses and "
        "high pitched squeals, eee, ooo, aaa, sss, shh, mmm, zzz, are all part of the test.",
    ),
    "da": (
        "Goddag, du har ringet til kundeservice. Alle vores medarbejdere er optaget lige nu, "
        "men bliv venligst i linjen, så besvarer vi dit opkald hurtigst muligt. Hvis du kender "
        "lokalnummeret, kan du taste det nu. Vi har åbent fra klokken otte til klokken fire, "
        "mandag til fredag. Tak fordi du venter, og hav en rigtig god dag.",
        "Rødgrød med fløde er en dansk ret, som mange udlændinge har svært ved at udtale. "
        "Om sommeren cykler folk langs havnen i København, mens måger skriger over vandet. "
        "En, to, tre, fire, fem, seks, syv, otte, ni, ti. Firmaet flyttede til Aarhus i "
        "nitten hundrede og niogtres, og siden da har telefonen ringet hver eneste dag.",
    ),
    "de": (
        "Guten Tag, Sie sind mit der Zentrale verbunden. Leider sind alle Leitungen besetzt. "
        "Bitte bleiben Sie am Apparat, der nächste freie Mitarbeiter ist gleich für Sie da. "
        "Eins, zwei, drei, vier, fünf, sechs, sieben, acht, neun, zehn. Zwölf Boxkämpfer "
        "jagen Viktor quer über den großen Sylter Deich, und das Wetter bleibt wechselhaft.",
    ),
    "sv": (
        "Hej och välkommen. Just nu är alla handläggare upptagna, men ditt samtal är viktigt "
        "för oss. Vänligen vänta, så kopplar vi dig till nästa lediga handläggare. Ett, två, "
        "tre, fyra, fem, sex, sju, åtta, nio, tio. Sju sjösjuka sjömän sköttes av sju "
        "sköna sjuksköterskor på det sjunkande skeppet Shanghai.",
    ),
    "nb": (
        "Hei, du har kommet til sentralbordet. Alle linjer er opptatt for øyeblikket. Vent "
        "litt, så setter vi deg over til neste ledige medarbeider. En, to, tre, fire, fem, "
        "seks, sju, åtte, ni, ti. Det var en gang en gutt som het Askeladden, og han gikk "
        "ut i verden for å prøve lykken sin.",
    ),
}
# (language, voice variant, words per minute, pitch 0..99)
VOICES = {
    "en": (
        ("en-us", "m3", 160, 50),
        ("en-gb", "f2", 175, 70),
        ("en-us", "f4", 150, 85),
        ("en-gb-x-rp", "m7", 185, 30),
        ("en-us", "klatt", 140, 60),
    ),
    "da": (("da", "m1", 155, 45), ("da", "f3", 170, 75), ("da", "m4", 145, 20)),
    "de": (("de", "f1", 160, 65), ("de", "m2", 170, 40), ("de", "whisper", 150, 50)),
    "sv": (("sv", "m5", 165, 35), ("sv", "f5", 155, 80)),
    "nb": (("nb", "f2", 160, 60), ("nb", "m6", 175, 40)),
}


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    path = base / "skillepunkt-tests" / "talkoff"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _clips() -> list[tuple[str, str, int, int, str]]:
    clips = []
    for lang, texts in TEXTS.items():
        for voice, variant, wpm, pitch in VOICES[lang]:
            for text in texts:
                clips.append((voice, variant, wpm, pitch, text))
    return clips


def speech_8k() -> npt.NDArray[np.int16]:
    """All clips, 8 kHz mono s16, each normalized to -1 dBFS peak, concatenated."""
    if shutil.which("espeak-ng") is None or shutil.which("sox") is None:
        raise RuntimeError("espeak-ng and sox are needed for the talk-off speech")
    clips = _clips()
    key = hashlib.sha256(repr(clips).encode() + b"sox-norm-1").hexdigest()[:16]
    cached = cache_dir() / f"speech-{key}.s16"
    if not cached.exists():
        parts = []
        with tempfile.TemporaryDirectory() as tmp:
            for i, (voice, variant, wpm, pitch, text) in enumerate(clips):
                wav = Path(tmp) / f"{i}.wav"
                raw = Path(tmp) / f"{i}.s16"
                subprocess.run(
                    [
                        *("espeak-ng", "-v", f"{voice}+{variant}"),
                        *("-s", str(wpm), "-p", str(pitch), "-w", str(wav), text),
                    ],
                    check=True,
                    timeout=120,
                    capture_output=True,
                )
                subprocess.run(
                    [
                        *("sox", str(wav), "-r", "8000", "-c", "1", "-b", "16"),
                        *("-e", "signed-integer", "-t", "raw", str(raw), "norm", "-1"),
                    ],
                    check=True,
                    timeout=120,
                    capture_output=True,
                )
                parts.append(raw.read_bytes())
        tmp_out = cached.with_suffix(".tmp")
        tmp_out.write_bytes(b"".join(parts))
        tmp_out.replace(cached)
    return np.frombuffer(cached.read_bytes(), dtype="<i2").astype(np.int16)
