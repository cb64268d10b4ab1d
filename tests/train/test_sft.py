import json

import pytest
import torch
from train_helpers import overrides

from r1omni.data import read_manifest, write_manifest
from r1omni.data.manifest import ClipRow
from r1omni.errors import ConfigError
from r1omni.models import OmniPolicy
from r1omni.train.config import load_config
from r1omni.train.loop import setup
from r1omni.train.sft import MicroBatch, balanced_class_weights, micro_loss, target_ids, target_text, warm_up
from r1omni.train.stages import train, train_from
from r1omni.train.stream import media_bytes


def test_targets():
    row = ClipRow(id="a", label="sad", dataset="x", audio="a.wav", rationale="Quiet voice.", caption="A quiet voice.")
    assert target_text(row, "reasoning") == "<think>Quiet voice.</think>\n<answer>sad</answer>"
    assert target_text(row, "label") == "<answer>sad</answer>"
    assert target_text(row, "caption") == "A quiet voice."


def test_cold_start_sft_lowers_the_loss(world_dir, tiny_model, tmp_path):
    config = load_config(None, overrides(world_dir, tiny_model, tmp_path / "sft", **{
        "data.train": world_dir / "coldstart.jsonl", "train.max_steps": 8, "train.lr": 1e-2,
        "data.val": world_dir / "val.jsonl", "train.eval_every": 8, "grpo.max_completion_length": 12}), kind="sft")
    state = setup(config)
    end = state.policy.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert target_ids(state.policy, state.rows[0], config.sft)[-1] == end
    final = train_from(state)
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
        setup(config)


def test_media_cache_keeps_decoded_clips_and_changes_nothing(world_dir, tiny_model, tmp_path):
    def run(name, cache_mb):
        config = load_config(None, overrides(world_dir, tiny_model, tmp_path / name, **{
            "data.train": world_dir / "coldstart.jsonl", "train.max_steps": 3, "data.media_cache_mb": cache_mb}),
            kind="sft")
        state = setup(config)
        train_from(state)
        lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
        return state, [json.loads(line)["loss"] for line in lines]

    cached, cached_losses = run("cached", 100)
    _, plain_losses = run("plain", 0)
    assert cached_losses == plain_losses
    assert len(cached.stream.cache) == 12  # 3 steps x 8 rows cover every one of the 12 rows
    first = cached.stream.example(cached.rows[0])
    assert cached.stream.example(cached.rows[0]) is first  # served from memory
    one_clip = media_bytes(first)
    small, _ = run("small", 2.5 * one_clip / 2**20)
    assert 1 <= len(small.stream.cache) <= 4 and small.stream.cache_bytes <= small.stream.cache_limit


def test_label_alignment_loss_prefers_the_nearest_label_word():
    import torch

    from r1omni.models.shared_prefix import Prompt
    from r1omni.train.alignment import alignment_loss, media_mean

    words = torch.eye(3) * 2  # three label words' embeddings [C, H]
    media = torch.tensor([[0.1, 1.0, 0.0], [0.0, 0.9, 0.1]], requires_grad=True)  # two media tokens, near word 1
    prompt = Prompt(torch.cat([torch.zeros(2, 3), media]), torch.tensor([5, 6, -1, -1]), torch.arange(4))
    losses = [alignment_loss(media_mean(prompt)[None], [label], (["a", "b", "c"], words)) for label in "abc"]
    assert losses[1] < losses[0] and losses[1] < losses[2]
    losses[1].backward()
    assert media.grad is not None and media.grad.abs().sum() > 0  # a direct path to the media embeddings


def test_balanced_class_weights_weigh_every_class_alike():
    labels = ["angry"] * 6 + ["sad"] * 2 + ["happy"]
    weights = balanced_class_weights(labels)
    assert weights == pytest.approx({"angry": 9 / 18, "sad": 9 / 6, "happy": 9 / 3})
    assert sum(weights[label] for label in labels) / len(labels) == pytest.approx(1.0)  # the loss keeps its scale
    assert {weights[label] * labels.count(label) for label in weights} == {3.0}  # each class's total alike


def test_label_alignment_loss_weighs_each_clip_by_its_class():
    from r1omni.train.alignment import alignment_loss

    words = (["a", "b"], torch.eye(2))
    media = torch.tensor([[1.0, 0.2], [0.3, 1.0], [0.1, 1.0]])  # [3, H]: one clip of a, two of b
    labels, weights = ["a", "b", "b"], {"a": 3.0, "b": 1.0}
    each = [alignment_loss(media[i : i + 1], [labels[i]], words) for i in range(3)]
    expected = (3 * each[0] + each[1] + each[2]) / (3 + 1 + 1)  # PyTorch's weighted mean
    assert alignment_loss(media, labels, words, weights) == pytest.approx(expected.item())
    assert alignment_loss(media, labels, words, weights) != pytest.approx(alignment_loss(media, labels, words).item())


def test_class_balance_weights_each_examples_sft_loss_by_its_class(world_dir, tiny_model, tmp_path):
    rows = read_manifest(world_dir / "coldstart.jsonl")
    rows = [row for row in rows if row.label == rows[0].label][:4] + \
        [row for row in rows if row.label != rows[0].label][:1]  # one class four times as common as the other
    manifest = write_manifest(rows, tmp_path / "unbalanced.jsonl")

    def state_with(balance):
        return setup(load_config(None, overrides(world_dir, tiny_model, tmp_path / f"o{balance}", **{
            "data.train": manifest, "sft.class_balance": balance}), kind="sft"))

    plain, balanced = state_with(False), state_with(True)
    examples = plain.stream.next_examples(len(rows))
    targets = [target_ids(plain.policy, e.row, plain.config.sft) for e in examples]
    tokens = sum(len(t) for t in targets)
    with torch.no_grad():
        alone = [micro_loss(plain, MicroBatch([e], [t], 1.0), tokens)[0] for e, t in zip(examples, targets)]
        together = micro_loss(balanced, MicroBatch(examples, targets, 1.0), tokens)[0]
        unweighted = micro_loss(plain, MicroBatch(examples, targets, 1.0), tokens)[0]
    weights = balanced_class_weights([row.label for row in rows])
    expected = sum(weights[e.row.label] * loss for e, loss in zip(examples, alone))
    assert together.item() == pytest.approx(expected.item(), rel=1e-5)
    assert unweighted.item() == pytest.approx(sum(alone).item(), rel=1e-5)
    assert weights[rows[0].label] == pytest.approx(5 / 8) and together.item() != pytest.approx(unweighted.item())


def test_label_alignment_trains_the_projectors_directly(world_dir, tiny_model, tmp_path):
    config = load_config(None, overrides(world_dir, tiny_model, tmp_path / "sft", **{
        "data.train": world_dir / "coldstart.jsonl", "train.max_steps": 8, "train.lr": 1e-2, "sft.target": "label",
        "train.batch_size": 12, "sft.label_alignment": 5.0, "data.labels": "dfew"}), kind="sft")  # every row each step
    train(config)
    metrics = [json.loads(line) for line in (tmp_path / "sft" / "metrics.jsonl").read_text().splitlines()]
    assert all("label_alignment" in m for m in metrics)
    assert metrics[-1]["label_alignment"] < metrics[0]["label_alignment"]


def test_label_alignment_needs_every_label_in_the_vocabulary(world_dir, tiny_model, tmp_path):
    config = load_config(None, overrides(world_dir, tiny_model, tmp_path / "o", **{
        "data.train": world_dir / "coldstart.jsonl", "sft.label_alignment": 1.0, "data.labels": "cremad"}), kind="sft")
    with pytest.raises(ConfigError, match="alignment_epochs need every label in data.labels=cremad"):
        setup(config)


def test_projector_warm_up_trains_the_projectors_alone(world_dir, tiny_model, tmp_path, capsys):
    config = load_config(None, overrides(world_dir, tiny_model, tmp_path / "sft", **{
        "data.train": world_dir / "coldstart.jsonl", "train.max_steps": 1, "sft.target": "label",
        "sft.alignment_epochs": 20, "data.labels": "dfew"}), kind="sft")
    state = setup(config)
    before = {k: v.clone() for k, v in state.policy.state_dict().items()}
    warm_up(state)
    printed = capsys.readouterr().out
    losses = [float(line.rsplit(" ", 1)[1]) for line in printed.splitlines() if "warm-up epoch" in line]
    assert len(losses) == 3 and losses[-1] < losses[0]  # epochs 1, 10 and 20
    changed = {k for k, v in state.policy.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.startswith("projectors.") for k in changed)



def test_a_warmed_up_projector_can_be_held_still_in_sft(world_dir, tiny_model, tmp_path):
    """`sft.alignment_lr` sets the warm-up's rate apart from SFT's, so `train.encoder_lr_scale=0`
    keeps the warmed-up projectors as they are while the LM learns."""
    config = load_config(None, overrides(world_dir, tiny_model, tmp_path / "sft", **{
        "data.train": world_dir / "coldstart.jsonl", "train.max_steps": 2, "train.lr": 1e-2, "sft.target": "label",
        "sft.alignment_epochs": 3, "sft.alignment_lr": 1e-2, "train.encoder_lr_scale": 0.0,
        "data.labels": "dfew"}), kind="sft")
    state = setup(config)
    start = {k: v.clone() for k, v in state.policy.state_dict().items()}
    warm_up(state)
    warmed = {k: v.clone() for k, v in state.policy.state_dict().items() if k.startswith("projectors.")}
    assert any(not torch.equal(v, start[k]) for k, v in warmed.items())
    trained = OmniPolicy.from_pretrained(train(config)).state_dict()
    assert all(torch.allclose(trained[k], v) for k, v in warmed.items())
    assert any(not torch.equal(trained[k], v) for k, v in start.items() if k.startswith("lm."))

def _with_levels(world_dir, path):
    """The cold-start rows as if described by `r1omni data describe-voice`: levels cycling 0, 1, 2."""
    from r1omni.data import write_manifest

    bounds = {"pitch": [1.0, 2.0], "loudness": [0.1, 0.2], "variation": [3.0, 4.0], "tempo": [2.0, 3.0]}
    rows = read_manifest(world_dir / "coldstart.jsonl")
    for i, row in enumerate(rows):
        row.meta = {**(row.meta or {}), "acoustics": {name: {"value": 0.0, "level": (i + k) % 3, "bounds": b}
                                                      for k, (name, b) in enumerate(bounds.items())}}
    return write_manifest(rows, path), bounds


def test_level_alignment_trains_the_projectors_towards_the_measured_levels(world_dir, tiny_model, tmp_path):
    manifest, bounds = _with_levels(world_dir, tmp_path / "described.jsonl")
    config = load_config(None, overrides(world_dir, tiny_model, tmp_path / "sft", **{
        "data.train": manifest, "train.max_steps": 8, "train.lr": 1e-2, "sft.target": "label",
        "train.batch_size": 12, "sft.level_alignment": 5.0, "sft.alignment_epochs": 2}), kind="sft")
    final = train(config)
    metrics = [json.loads(line) for line in (tmp_path / "sft" / "metrics.jsonl").read_text().splitlines()]
    assert all("level_alignment" in m and "label_alignment" not in m for m in metrics)
    assert metrics[-1]["level_alignment"] < metrics[0]["level_alignment"]
    # Training on described rows records the terciles their level words mean, for predict and eval.
    assert OmniPolicy.from_pretrained(final).config.task["voice_levels"] == bounds
    undescribed = load_config(None, overrides(world_dir, tiny_model, tmp_path / "o", **{
        "data.train": world_dir / "coldstart.jsonl", "sft.level_alignment": 1.0}), kind="sft")
    with pytest.raises(ConfigError, match="level_alignment needs rows with measured voice levels"):
        setup(undescribed)


def test_level_loss_prefers_the_measured_levels_word():
    from r1omni.train.alignment import level_loss

    words = {"pitch": torch.eye(3) * 2}
    media = torch.tensor([[0.0, 0.0, 1.0]])  # nearest the third word: high-pitched
    losses = [level_loss(media, [{"pitch": level}], words) for level in range(3)]
    assert losses[2] < losses[0] and losses[2] < losses[1]
    assert level_loss(media, [{}], words) == 0  # a clip without that attribute measured adds nothing
