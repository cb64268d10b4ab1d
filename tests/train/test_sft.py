import json

import pytest
from train_helpers import overrides

from r1omni.data import read_manifest
from r1omni.data.manifest import ClipRow
from r1omni.errors import ConfigError
from r1omni.models import OmniPolicy
from r1omni.train.config import load_config
from r1omni.train.examples import media_bytes
from r1omni.train.sft import SFTTrainer, target_text


def test_targets():
    row = ClipRow(id="a", label="sad", dataset="x", audio="a.wav", rationale="Quiet voice.", caption="A quiet voice.")
    assert target_text(row, "reasoning") == "<think>Quiet voice.</think>\n<answer>sad</answer>"
    assert target_text(row, "label") == "<answer>sad</answer>"
    assert target_text(row, "caption") == "A quiet voice."


def test_cold_start_sft_lowers_the_loss(world_dir, tiny_model, tmp_path):
    config = load_config(None, overrides(world_dir, tiny_model, tmp_path / "sft", **{
        "data.train": world_dir / "coldstart.jsonl", "train.max_steps": 8, "train.lr": 1e-2,
        "data.val": world_dir / "val.jsonl", "train.eval_every": 8, "grpo.max_completion_length": 12}), kind="sft")
    trainer = SFTTrainer(config)
    end = trainer.policy.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert trainer.target_ids(trainer.rows[0])[-1] == end
    final = trainer.run()
    metrics = [json.loads(line) for line in (tmp_path / "sft" / "metrics.jsonl").read_text().splitlines()]
    assert len(metrics) == 8 and metrics[-1]["loss"] < 0.8 * metrics[0]["loss"]
    assert {"val_uar", "val_war"} <= set(metrics[-1])
    assert OmniPolicy.from_pretrained(final).config.backend == "composed"
    assert (tmp_path / "sft" / "config.yaml").is_file()


def test_rows_without_the_target_field_are_rejected(world_dir, tiny_model, tmp_path):
    rows = read_manifest(world_dir / "rl.jsonl")
    bare = tmp_path / "bare.jsonl"
    bare.write_text("".join(json.dumps({k: v for k, v in r.to_json().items() if k != "rationale"}) + "\n"
                            for r in rows))
    config = load_config(None, overrides(world_dir, tiny_model, tmp_path / "o", **{"data.train": bare}), kind="sft")
    with pytest.raises(ConfigError, match="needs 'rationale' in every row"):
        SFTTrainer(config)


def test_media_cache_keeps_decoded_clips_and_changes_nothing(world_dir, tiny_model, tmp_path):
    def run(name, cache_mb):
        config = load_config(None, overrides(world_dir, tiny_model, tmp_path / name, **{
            "data.train": world_dir / "coldstart.jsonl", "train.max_steps": 3, "data.media_cache_mb": cache_mb}),
            kind="sft")
        trainer = SFTTrainer(config)
        trainer.run()
        lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        return trainer, [json.loads(line)["loss"] for line in lines]

    cached, cached_losses = run("cached", 100)
    _, plain_losses = run("plain", 0)
    assert cached_losses == plain_losses
    assert len(cached.stream.cache) == 12  # 3 steps x 8 rows cover every one of the 12 rows
    first = cached.stream.example(cached.rows[0])
    assert cached.stream.example(cached.rows[0]) is first  # served from memory
    one_clip = media_bytes(first)
    small, _ = run("small", 2.5 * one_clip / 2**20)
    assert 1 <= len(small.stream.cache) <= 4 and small.stream.cache_bytes <= small.stream.cache_limit
