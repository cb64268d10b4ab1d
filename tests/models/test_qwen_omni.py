"""The Qwen2.5-Omni thinker backend on a tiny random config."""

import numpy as np
import pytest
import torch
from PIL import Image

from r1omni.data import read_manifest
from r1omni.data.synth import SynthWorld, WorldConfig, write_world
from r1omni.models import ClipMedia, FeatureCache, OmniPolicy
from r1omni.models.qwen_omni import video_patches
from r1omni.prompts import build_messages

WORLD = SynthWorld(WorldConfig(seed=6, sizes={"test": 3}))


def clip(index=0, modalities=("video", "audio"), frames=4) -> ClipMedia:
    sample = WORLD.sample("test", index)
    return ClipMedia(frames=sample.frames[:frames] if "video" in modalities else None,
                     audio=sample.audio[: 16_000 * (1 + index)] if "audio" in modalities else None)


def test_video_patches_match_the_official_image_processor():
    from transformers import Qwen2VLImageProcessorPil

    image = np.random.default_rng(0).integers(0, 255, (112, 112, 3), np.uint8)
    official = Qwen2VLImageProcessorPil()(images=[Image.fromarray(image)], return_tensors="pt")
    patches, grid = video_patches(np.stack([image, image]), patch=14, merge=2, temporal=2)
    assert torch.equal(grid, official["image_grid_thw"])
    assert torch.allclose(patches, official["pixel_values"], atol=1e-5)
    odd, grid = video_patches(np.stack([image] * 3), patch=14, merge=2, temporal=2)  # last frame repeated
    assert grid.tolist() == [[2, 8, 8]] and torch.equal(odd[64:], patches)


@pytest.mark.parametrize("modalities", [("video", "audio"), ("video",), ("audio",)])
def test_placeholders_expand_into_the_thinkers_modality_tokens(qwen_policy, modalities):
    embeddings = qwen_policy.encode(clip(modalities=modalities))
    prompt = qwen_policy.build_inputs(build_messages(modalities=modalities), embeddings)
    assert prompt.positions.shape == (3, len(prompt.ids))
    ids = prompt.ids.tolist()
    for modality in ("video", "audio"):
        start, _, end = qwen_policy.tokens[modality]
        if modality in modalities:
            i, j = ids.index(start), ids.index(end)
            assert set(ids[i + 1 : j]) == {-1} and j - i - 1 == len(embeddings[modality][0])
        else:
            assert start not in ids
    if "video" in modalities:  # video tokens carry (t, h, w) positions, not a running count
        video = torch.tensor(ids) == -1
        assert not torch.equal(prompt.positions[1, video], prompt.positions[0, video])
    with pytest.raises(ValueError, match="but the clip has no"):
        qwen_policy.build_inputs(build_messages(modalities=("video", "audio")),
                                 {m: e for m, e in embeddings.items() if m != modalities[0]})


def relative(a, b):
    return ((a - b).abs().max() / b.abs().max().clamp(min=1e-12)).item()


def test_shared_prefix_equals_repeated_computation(make_qwen):
    policy = make_qwen(frozen=[])  # train the encoders too, so gradients reach them
    policy.train()
    completions = [[5, 9, 11, 3], [7], [8, 8, 2], [4, 6]]  # G = 2
    results = {}
    for shared in (True, False):
        policy.zero_grad()
        prompts = [policy.prompt(build_messages(), clip(0)), policy.prompt(build_messages(modalities=("audio",)),
                                                                          clip(1, ("audio",)))]
        logprobs, mask = policy.completion_logprobs(prompts, completions, shared_prefix=shared)
        (logprobs * torch.arange(1, logprobs.shape[1] + 1)).sum().backward()
        results[shared] = (logprobs.detach(), {n: p.grad.clone() for n, p in policy.named_parameters()
                                               if p.grad is not None})
    (lp_shared, g_shared), (lp_repeat, g_repeat) = results[True], results[False]
    assert relative(lp_shared, lp_repeat) < 1e-4
    assert set(g_shared) == set(g_repeat) and any("visual" in n for n in g_shared)
    for name in g_repeat:
        assert relative(g_shared[name], g_repeat[name]) < 1e-4, name


def test_generation_is_reproducible(qwen_policy):
    prompt = qwen_policy.prompt(build_messages(), clip())
    first = qwen_policy.generate([prompt], num_generations=3, max_new_tokens=8, seed=1)
    again = qwen_policy.generate([prompt], num_generations=3, max_new_tokens=8, seed=1)
    assert [c.ids for c in first[0]] == [c.ids for c in again[0]] and len(first[0]) == 3


def test_save_load_round_trip_and_frozen_encoder_cache(qwen_policy, tmp_path):
    media = clip()
    before, _ = qwen_policy.completion_logprobs([qwen_policy.prompt(build_messages(), media)], [[4, 5, 6]])
    qwen_policy.save_pretrained(tmp_path / "model")
    loaded = OmniPolicy.from_pretrained(tmp_path / "model").eval()
    assert type(loaded).__name__ == "QwenOmniPolicy" and loaded.config == qwen_policy.config
    loaded.feature_cache = FeatureCache(tmp_path / "cache")
    after, _ = loaded.completion_logprobs([loaded.prompt(build_messages(), media)], [[4, 5, 6]])
    assert torch.allclose(before, after, atol=1e-5)
    calls = []
    original = loaded.lm.model.get_video_features
    loaded.lm.model.get_video_features = lambda *a, **k: calls.append(1) or original(*a, **k)
    cached, _ = loaded.completion_logprobs([loaded.prompt(build_messages(), media)], [[4, 5, 6]])
    assert calls == [] and loaded.feature_cache.hits == 2
    assert torch.allclose(cached, after, atol=1e-5)


def test_generates_text_from_a_written_synthetic_clip(qwen_policy, tmp_path):
    write_world(WorldConfig(seed=2, sizes={"test": 1}), tmp_path, splits=("test",))
    row = read_manifest(tmp_path / "test.jsonl")[0]
    media = qwen_policy.read_clip(row.video, row.audio)
    assert media.frames.shape[0] == 4
    (completion,) = qwen_policy.generate([qwen_policy.prompt(build_messages(), media)], max_new_tokens=6, seed=0)[0]
    assert completion.ids and completion.text


@pytest.mark.slow
def test_the_shipped_qwen_recipe_caches_then_trains_sharded(world_dir, tmp_path):
    """configs/qwen2.5-omni-grpo.yaml's own steps at tiny sizes: `r1omni cache build`, then GRPO
    over two processes with FSDP (the config's `distributed: fsdp`) reading that cache."""
    import os
    import socket
    import subprocess
    import sys
    from pathlib import Path

    from r1omni.cli import main
    from r1omni.models import QwenOmniPolicy

    root = Path(__file__).parents[2]
    torch.manual_seed(0)
    QwenOmniPolicy.tiny_variants()["thinker"]().save_pretrained(tmp_path / "qwen")
    cache = tmp_path / "cache"
    assert main(["cache", "build", "--manifest", str(world_dir / "rl.jsonl"), "--model", str(tmp_path / "qwen"),
                 "--cache", str(cache)]) == 0
    entries = len(list(cache.rglob("*.safetensors")))
    assert entries == 24  # 12 clips x (video, audio)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    items = [f"model.path={tmp_path / 'qwen'}", f"model.feature_cache={cache}", f"data.train={world_dir / 'rl.jsonl'}",
             f"data.val={world_dir / 'val.jsonl'}", f"train.output_dir={tmp_path / 'run'}", "train.batch_size=8",
             "train.micro_batch_size=4", "train.max_steps=1", "train.eval_every=1", "train.save_every=null",
             "grpo.num_generations=4", "grpo.max_completion_length=6"]
    recipe = root / "configs" / "qwen2.5-omni-grpo.yaml"
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
                           port, "-m", "r1omni.cli", "grpo", "--config", str(recipe), *items],
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-1500:] + done.stderr[-3000:]
    assert "2 processes, fsdp" in done.stdout + done.stderr
    # The training clips' features came from the cache; only the 4 val clips were added.
    assert len(list(cache.rglob("*.safetensors"))) == entries + 2 * 4
    assert "val_uar" in (tmp_path / "run" / "metrics.jsonl").read_text()
    assert OmniPolicy.from_pretrained(tmp_path / "run" / "final").config.backend == "qwen2_5_omni"
