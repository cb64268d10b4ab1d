"""Every registered backend, at tiny random sizes, through every path the rest of r1omni takes:
an SFT step, a GRPO step, exact resume, LoRA, `r1omni cache build`, predict, and two processes
under DDP and FSDP. A new backend is tested by registering it (`OmniPolicy.tiny_variants`)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_helpers import overrides

from r1omni import load_model
from r1omni.cli import main
from r1omni.models import BACKENDS, OmniPolicy
from r1omni.train.config import load_config
from r1omni.train.loop import setup
from r1omni.train.stages import train, train_from

ROOT = Path(__file__).parents[1]
VARIANTS = [(backend, name) for backend, cls in BACKENDS.items() for name in cls.tiny_variants()]
VOWELS = "{reward_plugin:vowel_reward: 1.0, format: 1.0}"  # rewards that differ within a group from step 1


@pytest.fixture(scope="module", params=VARIANTS, ids=[f"{b}-{v}" for b, v in VARIANTS])
def variant(request, tmp_path_factory):
    """(saved model folder, feature cache folder) of one tiny variant."""
    backend, name = request.param
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp(f"{backend}-{name}")
    BACKENDS[backend].tiny_variants()[name]().save_pretrained(folder / "model")
    return folder / "model", folder / "cache"


def settings(world_dir, variant, out, **extra):
    model, cache = variant
    return overrides(world_dir, model, out, **{"model.feature_cache": cache, "grpo.beta": 0.04,
                                               "grpo.reward_weights": VOWELS, **extra})


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return OmniPolicy.from_pretrained(folder).state_dict()


def moved(before: dict, after: dict) -> set[str]:
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_sft_step_trains_the_lm_and_saves_a_loadable_model(world_dir, variant, tmp_path):
    config = load_config(None, settings(world_dir, variant, tmp_path / "sft", **{
        "data.train": world_dir / "coldstart.jsonl"}), kind="sft")
    final = train(config)
    metrics = [json.loads(line) for line in (tmp_path / "sft" / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 2 and all(m["skipped"] == 0 for m in metrics)
    changed = moved(weights(variant[0]), weights(final))
    assert any(".layers." in k for k in changed)  # the LM's decoder layers trained


def test_grpo_step_with_kl_times_its_stages(world_dir, variant, tmp_path):
    state = setup(load_config(None, settings(world_dir, variant, tmp_path / "grpo")))
    assert state.reference is not None
    for modality, encoder in state.policy.frozen_encoders().items():  # shared with the reference
        assert state.reference.encoders()[modality] is encoder
    final = train_from(state)
    metrics = json.loads((tmp_path / "grpo" / "metrics.jsonl").read_text().splitlines()[-1])
    assert metrics["kl"] >= 0 and metrics["time_generate"] > 0 and metrics["time_update"] > 0
    assert moved(weights(variant[0]), weights(final))


def test_resume_continues_exactly(world_dir, variant, tmp_path):
    train(load_config(None, settings(world_dir, variant, tmp_path / "a", **{"train.max_steps": 3})))
    halves = load_config(None, settings(world_dir, variant, tmp_path / "b", **{"train.max_steps": 3,
                                                                               "train.save_every": 1}))
    first = setup(halves)
    first.total_steps = 1  # stop after one step, as an interrupted run would
    train_from(first)
    train(halves, resume=tmp_path / "b" / "checkpoint-1")
    a, b = weights(tmp_path / "a" / "final"), weights(tmp_path / "b" / "final")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-6), name


def test_lora_trains_adapters_only_and_survives_saving(world_dir, variant, tmp_path):
    state = setup(load_config(None, settings(world_dir, variant, tmp_path / "lora", **{
        "model.lora": "{r: 4, alpha: 8}", "train.max_steps": 1})))
    before = {k: v.clone() for k, v in state.policy.lm.named_parameters()}
    encoder_names = {n for e in state.policy.encoders().values() for n, _ in e.named_parameters()}
    final = train_from(state)
    changed = {k for k, v in state.policy.lm.named_parameters() if not torch.equal(v, before[k])}
    lm_changed = {k for k in changed if not any(k.endswith(n) for n in encoder_names)}
    assert lm_changed and all("lora_" in k for k in lm_changed)
    loaded = OmniPolicy.from_pretrained(final)
    assert loaded.config.lora["r"] == 4
    assert all(torch.equal(v, state.policy.state_dict()[k]) for k, v in loaded.state_dict().items())


def test_cache_build_stores_every_frozen_encoder(world_dir, variant, tmp_path, capsys):
    model, _ = variant
    frozen = OmniPolicy.from_pretrained(model).frozen_encoders()
    args = ["cache", "build", "--manifest", str(world_dir / "val.jsonl"), "--model", str(model),
            "--cache", str(tmp_path / "cache")]
    assert main(args) == 0
    out = capsys.readouterr().out
    if not frozen:
        assert "nothing to cache" in out
        return
    assert f"4 clips: {4 * len(frozen)} features computed, 0 already cached, 0 failed" in out
    assert main(args) == 0
    assert f"0 features computed, {4 * len(frozen)} already cached" in capsys.readouterr().out


def test_predict_reads_a_clip_and_answers_in_text(world_dir, variant):
    clip = sorted((world_dir / "clips" / "val").glob("*.mp4"))[0]
    result = load_model(variant[0], max_new_tokens=6).predict(clip)
    assert result.error is None and result.completion


def _free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["ddp", "fsdp"])
def test_two_processes_match_one(world_dir, variant, tmp_path, mode):
    single = tmp_path / "one"
    train(load_config(None, settings(world_dir, variant, single)))
    # Each process also validates its share of the val clips; process 0 logs the gathered scores.
    items = settings(world_dir, variant, tmp_path / "two", **{"train.distributed": mode, "data.val": world_dir /
                                                              "val.jsonl", "train.eval_every": 2})
    env = {**os.environ, "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])}
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", _free_port()]
    done = subprocess.run([*launcher, "-m", "r1omni.cli", "grpo", *items], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-3000:]
    assert f"2 processes, {mode}" in done.stdout + done.stderr
    assert "val_uar" in (tmp_path / "two" / "metrics.jsonl").read_text()
    one, two = weights(single / "final"), weights(tmp_path / "two" / "final")
    assert moved(weights(variant[0]), one)
    for name in one:
        gap = float((one[name] - two[name]).abs().max())
        assert torch.allclose(one[name], two[name], atol=1e-5, rtol=1e-4), f"{name}: max difference {gap}"
