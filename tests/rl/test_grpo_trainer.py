import json

import pytest
import torch
from train_helpers import overrides

from r1omni.models import OmniPolicy
from r1omni.train import grpo as grpo_module
from r1omni.train.config import load_config
from r1omni.train.loop import TrainingError, setup
from r1omni.train.stages import train, train_from


def read_metrics(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def test_grpo_steps_log_the_named_stages(world_dir, tiny_model, tmp_path):
    config = load_config(None, overrides(world_dir, tiny_model, tmp_path / "g", **{"grpo.beta": 0.04}))
    state = setup(config)
    assert state.reference is not None
    final = train_from(state)
    metrics = read_metrics(tmp_path / "g")
    assert [m["step"] for m in metrics] == [1, 2]
    for key in ("reward", "accuracy", "format", "kl", "completion_length", "frac_reward_zero_std", "loss",
                "grad_norm", "clip_ratio", "seconds", "lr"):
        assert key in metrics[0], key
    stages = ("read", "generate", "reward", "advantages", "old_logprobs", "ref_logprobs", "update")
    for m in metrics:  # every stage timed, and together they make up nearly all of the step
        assert all(m[f"time_{s}"] >= 0 for s in stages)
        assert sum(m[f"time_{s}"] for s in stages) <= m["seconds"] + 1e-3
    assert all(0 <= m["completion_length"] <= 9 for m in metrics)  # 8 new tokens (+ end of turn)
    assert OmniPolicy.from_pretrained(final) is not None


def weights(folder):
    return {k: v.clone() for k, v in OmniPolicy.from_pretrained(folder).state_dict().items()}


def resumed_moved(checkpoint, start) -> bool:
    before, after = weights(start), weights(checkpoint)
    return any(not torch.equal(before[k], after[k]) for k in before)


# A reward that differs within groups from the first step, so the weights (and the KL term
# against the starting policy) change before the checkpoint.
VOWELS = {"grpo.reward_weights": "{reward_plugin:vowel_reward: 1.0, format: 1.0}"}


@pytest.mark.parametrize("extra", [VOWELS, {"grpo.preset": "dapo", "grpo.num_iterations": 2, **VOWELS}])
def test_resume_continues_exactly(world_dir, tiny_model, tmp_path, extra):
    straight = load_config(None, overrides(world_dir, tiny_model, tmp_path / "a", **{"train.max_steps": 4, **extra}))
    train(straight)
    halves = load_config(None, overrides(world_dir, tiny_model, tmp_path / "b",
                                         **{"train.max_steps": 4, "train.save_every": 2, **extra}))
    first = setup(halves)
    first.total_steps = 2  # stop after two steps, as an interrupted run would
    train_from(first)
    assert (tmp_path / "b" / "checkpoint-2" / "trainer_state.json").is_file()
    resumed = setup(halves, resume=tmp_path / "b" / "checkpoint-2")
    assert resumed.step == 2
    train_from(resumed)
    assert resumed_moved(tmp_path / "b" / "checkpoint-2", tiny_model)
    a, b = weights(tmp_path / "a" / "final"), weights(tmp_path / "b" / "final")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=1e-7), name
    timeless = [[{k: v for k, v in m.items() if k != "seconds" and not k.startswith("time_")}
                 for m in read_metrics(tmp_path / run)]
                for run in ("a", "b")]
    assert timeless[0] == timeless[1]  # the same rewards, losses and norms, step by step


def test_non_finite_losses_are_skipped_then_stop_the_run(world_dir, tiny_model, tmp_path, monkeypatch):
    config = load_config(None, overrides(world_dir, tiny_model, tmp_path / "nan",
                                         **{"train.max_steps": 3, "train.max_bad_steps": 2}))
    state = setup(config)
    before = {k: v.clone() for k, v in state.policy.state_dict().items()}
    monkeypatch.setattr(grpo_module, "aggregate", lambda *a, **k: torch.tensor(float("nan"), requires_grad=True))
    with pytest.raises(TrainingError, match=r"step 1: 2 non-finite steps in a row .* last batch: \['rl_"):
        train_from(state)
    assert [m["skipped"] for m in read_metrics(tmp_path / "nan")] == [1]
    after = state.policy.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # skipped updates change nothing


def test_lora_training_moves_only_adapters_and_the_rest_that_is_trainable(world_dir, tiny_model, tmp_path):
    config = load_config(None, overrides(world_dir, tiny_model, tmp_path / "lora", **{
        "model.lora": "{r: 4, alpha: 8}", "train.max_steps": 1,
        "grpo.reward_weights": "{reward_plugin:vowel_reward: 1.0}"}))
    state = setup(config)
    before = {k: v.clone() for k, v in state.policy.lm.named_parameters()}
    train_from(state)
    changed = {k for k, v in state.policy.lm.named_parameters() if not torch.equal(v, before[k])}
    assert changed and all("lora_" in k for k in changed)


@pytest.mark.parametrize("setting", ["folder", "none"])
def test_frozen_towers_read_the_feature_cache_while_training(world_dir, tmp_path, setting):
    from r1omni.models import ComposedPolicy

    torch.manual_seed(0)
    policy = ComposedPolicy.tiny_variants()["nano"]()
    policy.config.frozen = ["video", "audio"]
    frozen = policy.save_pretrained(tmp_path / "frozen")
    cache = tmp_path / "cache" if setting == "folder" else "none"
    config = load_config(None, overrides(world_dir, frozen, tmp_path / "g", **{"model.feature_cache": cache,
                                                                                "train.max_steps": 1}))
    state = setup(config)
    if setting == "none":
        assert state.policy.feature_cache is None
        return
    train_from(state)
    assert state.reference is not None and state.reference.feature_cache is state.policy.feature_cache
    # 2 prompts, 2 towers: each encoded once by the rollout, then read back by every later pass.
    assert state.policy.feature_cache.misses == 4 and state.policy.feature_cache.hits >= 4
    assert len(list((tmp_path / "cache").rglob("*.safetensors"))) == 4
