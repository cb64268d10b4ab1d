"""A tiny model that says it was trained on measured voice levels, and voices with known levels."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from r1omni.media import write_audio

RATE = 16_000
# Terciles no clip reaches: every measured level is 0 (low-pitched, quiet, flat, slow).
LOWEST = {"pitch": [1e9, 2e9], "loudness": [1e9, 2e9], "variation": [1e9, 2e9], "tempo": [1e9, 2e9]}


def voice(path: Path, hz: float = 150.0, amplitude: float = 0.5, seconds: float = 1.5) -> Path:
    """A vowel-like harmonic tone with a slow vibrato: openSMILE hears it as voiced."""
    t = np.arange(int(seconds * RATE)) / RATE
    phase = 2 * np.pi * np.cumsum(hz * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))) / RATE
    signal = sum(np.sin(k * phase) / k for k in range(1, 6))
    return write_audio(path, (amplitude * signal / 3).astype(np.float32), RATE)


def with_voice_levels(model: Path, out: Path, bounds: dict | None = None) -> Path:
    """A copy of a saved model whose task records voice-level terciles (as training on rows from
    `r1omni data describe-voice` does), audio only."""
    shutil.copytree(model, out)
    config_path = out / "r1omni_config.json"
    config = json.loads(config_path.read_text())
    config["task"] = {"prompt": "r1omni", "labels": "dfew", "modalities": ["audio"],
                      "voice_levels": bounds or LOWEST}
    config_path.write_text(json.dumps(config))
    return out


SAID = "The voice is low-pitched and quiet, with a flat pitch contour and a slow tempo."


def trained_speech_model(model: Path, out: Path) -> Path:
    """`model` taught by a short SFT, audio only, to say `SAID` of six voices whose rows were measured
    against `LOWEST` (so every level of `SAID` holds for any voice): training on such rows records the
    terciles in the model, as it does for rows from `r1omni data describe-voice`."""
    from r1omni.data import ClipRow, write_manifest
    from r1omni.train.config import load_config
    from r1omni.train.stages import train

    out.mkdir(parents=True, exist_ok=True)
    acoustics = {name: {"value": 1.0, "level": 0, "bounds": bounds} for name, bounds in LOWEST.items()}
    pitches = (110, 140, 170, 200, 230, 260)
    rows = [ClipRow(id=f"v{i}", label="sad", dataset="test", audio=str(voice(out / f"v{i}.wav", hz)), speaker="1",
                    rationale=SAID, meta={"acoustics": acoustics}) for i, hz in enumerate(pitches)]
    manifest = write_manifest(rows, out / "train.jsonl")
    config = load_config(None, [f"model.path={model}", f"data.train={manifest}", f"train.output_dir={out / 'sft'}",
                                "data.modalities=[audio]", "sft.target=reasoning", "train.max_steps=150",
                                "train.lr=3e-3", "train.batch_size=6", "train.micro_batch_size=6",
                                "train.scheduler=constant", "model.feature_cache=none"], kind="sft")
    return train(config)
