"""The humanomni backend against the official R1-Omni code: stage-by-stage parity on the fixture
(a tiny model in the released key layout, built and run with the official code in float32), the
released key layout at full shapes, the official prompt and frame sampling, the round trip to the
official layout, and the commands a user runs on a released folder."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from train_helpers import overrides

from r1omni.cli import main
from r1omni.errors import ConfigError
from r1omni.media import frame_indices, read_frames, write_video
from r1omni.models import HumanOmniPolicy, load_policy
from r1omni.models.humanomni.official import (
    IGNORED_PREFIXES,
    export_official,
    load_official_weights,
    official_state_dict,
    policy_config,
)
from r1omni.models.humanomni.policy import instruction
from r1omni.models.humanomni.projector import pool_faces, slow_fast
from r1omni.models.shared_prefix import Prompt

from corpora import humanomni_reference
from media_helpers import frame_index, index_frame

ROOT = Path(__file__).parents[2]
RTOL = 1e-4  # the bar: max |ours - official| / max |official| per stage
INSTRUCTION = ("As an emotional recognition expert; throughout the video, which emotion conveyed by the characters "
               "is the most obvious to you?")


@pytest.fixture(scope="module")
def fixture_dir() -> Path:
    return humanomni_reference() / "fixture"


@pytest.fixture(scope="module")
def bert_dir(fixture_dir) -> Path:
    return fixture_dir / "towers" / "bert_tiny_uncased"


@pytest.fixture(scope="module")
def policy(fixture_dir, bert_dir) -> HumanOmniPolicy:
    return load_policy(fixture_dir, device="cpu", dtype="float32", bert_tokenizer=bert_dir)


@pytest.fixture(scope="module")
def inputs(fixture_dir) -> dict:
    return load_file(fixture_dir / "inputs.safetensors")


@pytest.fixture(scope="module")
def official(fixture_dir) -> dict:
    return load_file(fixture_dir / "outputs.safetensors")


@pytest.fixture(scope="module")
def stages(policy, inputs) -> dict:
    return policy.reference_stages(**{k: v for k, v in inputs.items() if k != "attention_mask"})


def relative_gap(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float((ours.reshape(theirs.shape).float() - theirs).abs().max() / theirs.abs().max())


@pytest.mark.parametrize("stage", ["vision.features", "proj.video_branch", "proj.body_branch", "gate.probs",
                                   "video.fused_tokens", "audio.whisper_last_hidden_state", "audio.pooled",
                                   "audio.tokens", "lm.inputs_embeds", "lm.logits"])
def test_every_stage_matches_the_official_code(stages, official, stage):
    assert stages[stage].shape == official[stage].shape
    assert relative_gap(stages[stage], official[stage]) < RTOL


def test_projector_internals_match(policy, official):
    """The RegStage, the Conv3d sampler (before its time crop), the face branch and its pooling."""
    projector, features = policy.projector, official["vision.features"]
    with torch.no_grad():
        s1 = projector.s1_video(features.transpose(1, 2).reshape(8, 32, 14, 14))
        sampled = projector.sampler_video(s1.transpose(0, 1)[None])
        s2 = projector.s2_video(sampled[0, :, :-1].transpose(0, 1))
        face = projector.mlp_2xgelu_face(features)
        logits = policy.gate(policy.bert(input_ids=torch.tensor([[101, 102]])).last_hidden_state[:, 0])
    for ours, name in ((s1, "proj.video.s1_out"), (sampled, "proj.video.sampler_out"), (s2, "proj.video.s2_out"),
                       (face, "proj.face_branch"), (pool_faces(face), "proj.face_pooled")):
        assert relative_gap(ours, official[name]) < RTOL, name
    assert logits.shape == official["gate.logits"].shape


def test_greedy_tokens_and_every_decoding_step_match(policy, stages, official):
    """Eight greedy tokens through the KV-cache decoder, and the logits at each step."""
    embeds = stages["lm.inputs_embeds"][0]
    prompt = Prompt(embeds, torch.full((len(embeds),), -1), torch.arange(len(embeds)))
    (completion,) = policy.generate([prompt], temperature=0, max_new_tokens=8)[0]
    assert completion.ids == official["gen.output_ids"][0].tolist()
    with torch.no_grad():
        logits, _ = policy.completion_logits([prompt], [completion.ids])
    assert relative_gap(logits, official["gen.step_logits"]) < RTOL


def test_the_official_prompt_and_gate_question(policy, inputs, stages, fixture_dir):
    """The chat prompt tokenises to the fixture's input_ids (placeholders as -201/-202, wrappers as
    text), the gate reads the instruction alone, and build_inputs splices the same embeddings."""
    from safetensors import safe_open

    with safe_open(fixture_dir / "inputs.safetensors", "pt") as handle:
        text = handle.metadata()["prompt"]
    messages = [{"role": "user", "content": f"<video>\n<audio>\n{INSTRUCTION}"}]
    rendered = policy.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    wrapped = rendered.replace("<video>", "<vi_start><video><vi_end>").replace("<audio>", "<au_start><audio><au_end>")
    assert wrapped == text  # the fixture's prompt string, as the official code builds it
    assert policy.prompt_ids(rendered) == inputs["input_ids"][0].tolist()
    assert instruction(messages) == INSTRUCTION
    assert policy.bert_tokenizer([INSTRUCTION])["input_ids"][0] == inputs["bert_input_ids"][0].tolist()
    branches = torch.stack([stages["proj.video_branch"][0], stages["proj.body_branch"][0],
                            pool_faces(policy.projector.mlp_2xgelu_face(stages["vision.features"])).flatten(0, 1)])
    with torch.no_grad():
        prompt = policy.build_inputs(messages, {"video": branches, "audio": stages["audio.tokens"]})
    assert relative_gap(prompt.embeds, stages["lm.inputs_embeds"][0]) < 1e-6
    assert torch.equal(prompt.positions, torch.arange(len(prompt.embeds)))


def test_frames_are_sampled_by_the_official_formula(tmp_path):
    """frame_sample: round((N - 1) / 8 * (i + 0.5) + 1e-6); frames stretched to 224."""
    assert frame_indices(100, 8) == [6, 19, 31, 43, 56, 68, 80, 93]
    assert frame_indices(9, 8) == [1, 2, 3, 4, 5, 6, 7, 8]  # exact halves go up (the 1e-6), not to even
    clip = write_video(tmp_path / "numbered.mp4", (index_frame(i) for i in range(37)), fps=25)
    frames = read_frames(clip, 8, 224, mode="resize", sampling="index", resample="bicubic")
    assert frames.shape == (8, 224, 224, 3)
    assert [frame_index(f) for f in frames] == frame_indices(37, 8)


def test_slow_fast_compressor_gives_170_tokens_in_the_official_order():
    """Every frame 2x2-pooled (7x7 -> 3x3), then frames 1 and 5 whole."""
    tokens = torch.randn(8 * 49, 4)
    compressed = slow_fast(tokens, 8)
    assert compressed.shape == (170, 4)
    grid = tokens.view(8, 7, 7, 4)
    assert torch.allclose(compressed[0], grid[0, :2, :2].mean((0, 1)))
    assert torch.allclose(compressed[8], grid[0, 4:6, 4:6].mean((0, 1)))  # frame 0's last pooled cell
    assert torch.equal(compressed[72:121], tokens[49:98]) and torch.equal(compressed[121:], tokens[245:294])


def test_slow_fast_flag_changes_the_video_token_count(fixture_dir, bert_dir, inputs):
    policy = load_policy(fixture_dir, device="cpu", dtype="float32", bert_tokenizer=bert_dir, slow_fast=True)
    stages = policy.reference_stages(**{k: v for k, v in inputs.items() if k != "attention_mask"})
    assert stages["video.fused_tokens"].shape == (170, 64)
    assert stages["lm.inputs_embeds"].shape[1] == 87 - 2 + 170 + 500


def test_released_key_layout_at_full_shapes(policy):
    """HumanOmni-0.5B at its real widths (meta tensors): every key of the released file in
    keys.tsv maps to a parameter of the same shape, and nothing is left over."""
    rows = [line.split("\t") for line in (humanomni_reference() / "keys.tsv").read_text().splitlines()[1:]]
    released = {name: json.loads(shape) for name, shape, *_ in rows if name != "lm_head.weight"}
    official = {"mm_vision_tower": "siglip-base-patch16-224", "mm_audio_tower": "whisper-large-v3",
                "vocab_size": 151936, "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
                "num_attention_heads": 14, "num_key_value_heads": 2, "rms_norm_eps": 1e-6, "rope_theta": 1e6,
                "tie_word_embeddings": True, "max_position_embeddings": 32768}
    from r1omni.models.humanomni.official import BERT_BASE_UNCASED

    with torch.device("meta"):
        full = HumanOmniPolicy(policy_config(official, Path("."), dict(BERT_BASE_UNCASED)), policy.tokenizer,
                               policy.bert_tokenizer)
    ours = {k: list(v.shape) for k, v in official_state_dict(full).items()}
    expected = {k: v for k, v in released.items() if not k.startswith(IGNORED_PREFIXES)}
    assert ours == expected
    assert 1_100 < len(expected) < len(released)  # the ignored ones: compressor and Whisper's classification head
    load_official_weights(full, {k: torch.empty(v, device="meta") for k, v in released.items()}, "keys.tsv")


def test_a_wrong_shape_or_a_missing_key_is_named(policy):
    state = official_state_dict(policy)
    with pytest.raises(ConfigError, match=r"f: missing keys \['lm\.model\.norm\.weight'\]"):
        load_official_weights(policy, {k: v for k, v in state.items() if k != "model.norm.weight"}, "f")
    with pytest.raises(ConfigError, match="unknown key"):
        load_official_weights(policy, {**state, "vision_head.weight": torch.zeros(1)}, "f")
    with pytest.raises(ConfigError, match=r"(?s)f: weights do not fit .*lm\.model\.norm\.weight"):
        load_official_weights(policy, {**state, "model.norm.weight": torch.zeros(3)}, "f")


def test_a_released_folder_without_or_with_damaged_weights_is_named(policy, tmp_path):
    folder = export_official(policy, tmp_path / "released")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(ConfigError, match=f"{weights}: not a readable safetensors file"):
        load_policy(folder)
    weights.unlink()
    with pytest.raises(ConfigError, match="no model.safetensors"):
        load_policy(folder)


def test_export_to_the_official_layout_round_trips(policy, fixture_dir, stages, inputs, tmp_path):
    exported = export_official(policy, tmp_path / "released")
    assert json.loads((exported / "config.json").read_text())["model_type"] == "HumanOmni_qwen2"
    written = load_file(exported / "model.safetensors")
    original = load_file(fixture_dir / "model.safetensors")
    kept = {k for k in original if not k.startswith(IGNORED_PREFIXES)}
    assert set(written) == kept and all(torch.equal(written[k], original[k]) for k in kept)
    again = load_policy(exported, device="cpu", dtype="float32")  # its BERT tokenizer travels with it
    logits = again.reference_forward(**{k: v for k, v in inputs.items() if k != "attention_mask"})
    assert torch.equal(logits, stages["lm.logits"])


def test_saved_in_r1omni_format_reloads(policy, stages, inputs, tmp_path):
    policy.save_pretrained(tmp_path / "saved")
    again = load_policy(tmp_path / "saved", device="cpu", dtype="float32")
    assert isinstance(again, HumanOmniPolicy)
    logits = again.reference_forward(**{k: v for k, v in inputs.items() if k != "attention_mask"})
    assert torch.equal(logits, stages["lm.logits"])


def test_missing_bert_tokenizer_says_how_to_give_it(fixture_dir, monkeypatch):
    monkeypatch.delenv("R1OMNI_BERT_TOKENIZER", raising=False)
    with pytest.raises(ConfigError, match="--bert-tokenizer"):
        load_policy(fixture_dir)
    with pytest.raises(ConfigError, match="no vocab.txt"):
        load_policy(fixture_dir, bert_tokenizer=fixture_dir)


def test_predict_on_a_released_folder_every_modal_setting(fixture_dir, bert_dir, make_clip, make_audio, tmp_path,
                                                           capsys):
    """`r1omni predict --model <released folder>`: video+audio, video only, and an audio file alone."""
    clip, sound = make_clip(seconds=2.0), make_audio(seconds=1.5)
    for modal, path, dtype in (("video_audio", clip, "float32"), ("video", clip, "bfloat16"), ("audio", sound, "auto")):
        out = tmp_path / f"{modal}.jsonl"
        code = main(["predict", str(path), "--model", str(fixture_dir), "--bert-tokenizer", str(bert_dir),
                     "--modal", modal, "--dtype", dtype, "--max-new-tokens", "4", "--out", str(out)])
        (row,) = [json.loads(line) for line in out.read_text().splitlines()]
        assert code == 0 and row["error"] is None and row["completion"]


def test_bfloat16_on_the_cpu(fixture_dir, bert_dir, make_clip):
    from r1omni.predict import Predictor

    policy = load_policy(fixture_dir, device="cpu", dtype="bfloat16", bert_tokenizer=bert_dir)
    assert policy.lm.dtype == torch.bfloat16 and next(policy.bert.parameters()).dtype == torch.bfloat16
    (result,) = Predictor(policy, max_new_tokens=4).predict_paths([make_clip(seconds=2.0)])
    assert result.error is None and result.completion


def test_sft_and_grpo_start_from_a_released_folder(fixture_dir, bert_dir, world_dir, tmp_path, monkeypatch):
    """Both trainers start from the released folder, with the frozen towers feeding the feature
    cache; the result saves in r1omni's format and exports back to the official layout."""
    from r1omni.train.config import load_config
    from r1omni.train.loop import setup
    from r1omni.train.stages import train_from

    monkeypatch.setenv("R1OMNI_BERT_TOKENIZER", str(bert_dir))
    cache = tmp_path / "cache"
    common = {"model.feature_cache": cache, "train.max_steps": 1, "train.batch_size": 4, "train.micro_batch_size": 4,
              "data.max_rows": 4}
    sft = setup(load_config(None, overrides(world_dir, fixture_dir, tmp_path / "sft", **{
        **common, "data.train": world_dir / "coldstart.jsonl"}), kind="sft"))
    assert set(sft.policy.frozen_encoders()) == {"video", "audio"}
    final = train_from(sft)
    assert len(list(cache.rglob("*.safetensors"))) == 8  # 4 clips x 2 towers, computed once
    grpo = setup(load_config(None, overrides(world_dir, final, tmp_path / "grpo", **{
        **common, "grpo.num_generations": 4})))
    grpo_final = train_from(grpo)
    assert len(list(cache.rglob("*.safetensors"))) == 10  # GRPO's one prompt (4 = 1 x G) adds its clip's two
    policy = load_policy(grpo_final, device="cpu", dtype="float32")
    exported = export_official(policy, tmp_path / "exported")
    again = load_policy(exported, device="cpu", dtype="float32")
    assert all(torch.equal(a, b) for a, b in zip(policy.state_dict().values(), again.state_dict().values()))
    assert os.environ["R1OMNI_BERT_TOKENIZER"] == str(bert_dir)
    assert np.isfinite(json.loads((tmp_path / "grpo" / "metrics.jsonl").read_text().splitlines()[-1])["loss"])


def test_eval_and_export_commands_on_a_released_folder(fixture_dir, bert_dir, world_dir, tmp_path, capsys):
    main(["eval", "--manifest", str(world_dir / "val.jsonl"), "--model", str(fixture_dir), "--bert-tokenizer",
          str(bert_dir), "--labels", "dfew", "--max-new-tokens", "4", "--out", str(tmp_path / "eval")])
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["n"] == 4 and metrics["format_rate"] == 0.0  # random weights answer nothing
    main(["model", "export", "--model", str(fixture_dir), "--bert-tokenizer", str(bert_dir), "--out",
          str(tmp_path / "bf16")])
    written = load_file(tmp_path / "bf16" / "model.safetensors")
    assert {t.dtype for t in written.values()} == {torch.bfloat16}
    assert json.loads((tmp_path / "bf16" / "config.json").read_text())["torch_dtype"] == "bfloat16"
    assert main(["model", "export", "--model", str(ROOT / "r1omni" / "assets" / "nano_base"), "--out",
                 str(tmp_path / "nano")]) == 2
    assert "only humanomni models have a released layout" in capsys.readouterr().err


def test_a_chat_template_kept_in_chat_template_json_is_read(policy, tmp_path):
    """Released folders may keep the template in the processor's chat_template.json only."""
    folder = export_official(policy, tmp_path / "released")
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    template = settings.pop("chat_template", None) or (folder / "chat_template.jinja").read_text()
    (folder / "chat_template.jinja").unlink(missing_ok=True)
    (folder / "tokenizer_config.json").write_text(json.dumps(settings))
    with pytest.raises(ConfigError, match="no chat template"):
        load_policy(folder)
    (folder / "chat_template.json").write_text(json.dumps({"chat_template": template}))
    assert load_policy(folder).tokenizer.chat_template == template


def test_towers_come_from_their_folders_when_those_hold_weights(policy, fixture_dir, tmp_path):
    """As the official loader does: mm_vision_tower / mm_audio_tower folders with weights win over
    the copies in model.safetensors (the fixture's tower folders hold configs only)."""
    from transformers import SiglipVisionConfig, SiglipVisionModel, WhisperConfig, WhisperModel

    folder = export_official(policy, tmp_path / "released")
    config = json.loads((folder / "config.json").read_text())
    torch.manual_seed(1)
    vision = SiglipVisionModel(SiglipVisionConfig.from_pretrained(fixture_dir / config["mm_vision_tower"]))
    vision.save_pretrained(folder / config["mm_vision_tower"])
    audio = WhisperModel(WhisperConfig.from_pretrained(fixture_dir / config["mm_audio_tower"]))
    audio.save_pretrained(folder / config["mm_audio_tower"])
    loaded = load_policy(folder, device="cpu", dtype="float32")
    ours, theirs = loaded.towers["video"].model.state_dict(), vision.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)
    assert not torch.equal(ours["embeddings.patch_embedding.weight"],
                           policy.towers["video"].model.state_dict()["embeddings.patch_embedding.weight"])
    encoder = audio.get_encoder().state_dict()
    assert all(torch.equal(loaded.towers["audio"].model.state_dict()[k], encoder[k]) for k in encoder)


def test_tower_folders_are_read_from_inside_the_model_folder_only(policy, fixture_dir, tmp_path):
    """A released config may name any path; r1omni reads tower weights only inside the model folder
    (an absolute name is looked for there by its last part), else keeps the checkpoint's copies."""
    from transformers import SiglipVisionConfig, SiglipVisionModel

    folder = export_official(policy, tmp_path / "released")
    config = json.loads((folder / "config.json").read_text())
    torch.manual_seed(2)
    outside = SiglipVisionModel(SiglipVisionConfig.from_pretrained(fixture_dir / config["mm_vision_tower"]))
    outside.save_pretrained(tmp_path / "siglip_elsewhere")
    copies = policy.towers["video"].model.state_dict()["embeddings.patch_embedding.weight"]
    for named in ("../siglip_elsewhere", str(tmp_path / "siglip_elsewhere")):
        (folder / "config.json").write_text(json.dumps({**config, "mm_vision_tower": named}))
        loaded = load_policy(folder, device="cpu", dtype="float32")
        assert torch.equal(loaded.towers["video"].model.state_dict()["embeddings.patch_embedding.weight"], copies)
    (folder / "siglip_elsewhere").symlink_to(tmp_path / "siglip_elsewhere")  # inside by name, outside in fact
    assert torch.equal(load_policy(folder, device="cpu", dtype="float32").towers["video"].model.state_dict()[
        "embeddings.patch_embedding.weight"], copies)
    (folder / "siglip_elsewhere").unlink()
    outside.save_pretrained(folder / "siglip_elsewhere")  # the author's absolute path, found by its last part
    loaded = load_policy(folder, device="cpu", dtype="float32")
    assert torch.equal(loaded.towers["video"].model.state_dict()["embeddings.patch_embedding.weight"],
                       outside.state_dict()["embeddings.patch_embedding.weight"])
