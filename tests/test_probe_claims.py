"""scripts/probe_claims.py: the ceiling of faithfulness, a linear probe per cue and per level."""

import json
import subprocess
import sys

import numpy as np
import pytest
from script_helpers import SCRIPTS, load_script

from r1omni.claims import LEVEL_WORDS, Measurement

SCRIPT = SCRIPTS / "probe_claims.py"


def _measured(levels: dict) -> Measurement:
    return Measurement(shown=frozenset({"voice"}), levels=levels)


def test_a_level_the_features_carry_is_read_back_and_one_they_do_not_is_not():
    probes = load_script("probe_claims")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4))
    # pitch is the first feature's third; the other attributes are noise the features do not carry
    pitch = np.digitize(x[:, 0], np.quantile(x[:, 0], [1 / 3, 2 / 3]))
    noise = {name: rng.integers(0, 3, 300) for name in LEVEL_WORDS if name != "pitch"}
    measured = [_measured({"pitch": int(pitch[i]), **{n: int(v[i]) for n, v in noise.items()}}) for i in range(300)]
    result = probes.level_probes(x[:200], measured[:200], x[200:], measured[200:])
    assert result["pitch"]["agreement"] > 0.85 and result["pitch"]["agreement_surest_half"] >= 0.9
    for name in noise:
        assert result[name]["agreement"] < 0.5
        assert 0.2 < result[name]["majority"] < 0.5


@pytest.mark.slow
def test_the_script_probes_a_models_towers_on_a_world(world_dir, tiny_model, tmp_path):
    out = tmp_path / "probes.json"
    command = [sys.executable, str(SCRIPT), "--model", str(tiny_model), "--fit", str(world_dir / "coldstart.jsonl"),
               str(world_dir / "rl.jsonl"), "--test", str(world_dir / "val.jsonl"), "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(out.read_text())
    assert result["fit_clips"] == 24
    (test,) = result["tests"].values()
    assert test["clips"] == 4 and test["per_cue"]
    for cue in test["per_cue"].values():
        assert cue["modality"] in ("face", "voice") and 0 <= cue["accuracy"] <= 1
        assert cue["majority"] >= 0.5
    ceiling = test["claiming_what_the_probes_see"]
    assert set(ceiling) == {"0.5", "0.6", "0.7", "0.8", "0.9"}
    assert all(0 <= c["recall"] <= 1 and 0 <= c["no_claims_rate"] <= 1 for c in ceiling.values())
    again = subprocess.run(command, capture_output=True, text=True, timeout=600)  # an existing --out is kept
    assert again.returncode == 2 and "exists" in again.stderr and json.loads(out.read_text()) == result
