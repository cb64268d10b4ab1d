import numpy as np
import pytest
import torch

from r1omni.data import read_manifest
from r1omni.data.synth import SynthWorld, WorldConfig, write_world
from r1omni.errors import ConfigError
from r1omni.models import ClipMedia, ComposedPolicy, FeatureCache, OmniPolicy, PolicyConfig
from r1omni.prompts import PLACEHOLDERS, build_messages

WORLD = SynthWorld(WorldConfig(seed=5, sizes={"test": 4}))


def media(index: int = 0) -> ClipMedia:
    sample = WORLD.sample("test", index)
    return ClipMedia(frames=sample.frames, audio=sample.audio)


def clip_for(policy, index=0, modalities=("video", "audio")):
    sample = WORLD.sample("test", index)
    frames = sample.frames[:: max(1, len(sample.frames) // policy.config.num_frames)][: policy.config.num_frames]
    return ClipMedia(frames=frames if "video" in modalities else None,
                     audio=sample.audio[: 16_000 * (1 + index)] if "audio" in modalities else None)


@pytest.fixture(params=["nano", "composed"])
def policy(request, nano_policy, composed_policy):
    return nano_policy if request.param == "nano" else composed_policy


@pytest.mark.parametrize("modalities", [("video", "audio"), ("video",), ("audio",)])
def test_placeholders_expand_into_marked_modality_tokens(policy, modalities):
    clip = clip_for(policy, modalities=modalities)
    embeddings = policy.encode(clip)
    assert set(embeddings) == set(modalities)
    prompt = policy.build_inputs(build_messages(modalities=modalities), embeddings)
    ids = prompt.ids.tolist()
    assert len(ids) == len(prompt.embeds) and prompt.embeds.shape[1] == policy.lm.config.hidden_size
    for modality in ("video", "audio"):
        start, end = policy.markers[modality]
        if modality in modalities:
            i, j = ids.index(start), ids.index(end)
            assert j - i - 1 == len(embeddings[modality]) and set(ids[i + 1 : j]) == {-1}
            assert torch.equal(prompt.embeds[i + 1 : j], embeddings[modality])
        else:
            assert start not in ids
    assert ids.count(-1) == sum(len(e) for e in embeddings.values())
    text = policy.tokenizer.decode([t for t in ids if t >= 0])
    assert text.endswith("<|im_start|>assistant\n") and "<video>" not in text and "<audio>" not in text


def test_a_placeholder_without_its_modality_is_an_error(policy):
    embeddings = policy.encode(clip_for(policy, modalities=("video",)))
    with pytest.raises(ValueError, match="has <audio> but the clip has no audio"):
        policy.build_inputs(build_messages(modalities=("video", "audio")), embeddings)


def relative(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp(min=1e-12)).item()


def test_shared_prefix_equals_repeated_computation(policy):
    """Prompts of different lengths (left padding) and completions of different lengths: the
    shared-prefix pass gives the same log-probs and parameter gradients."""
    policy.train()
    prompts = [policy.build_inputs(build_messages(modalities=m), policy.encode(clip_for(policy, i, m)))
               for i, m in enumerate([("video", "audio"), ("audio",)])]
    assert len(prompts[0].embeds) != len(prompts[1].embeds)
    vocab = len(policy.tokenizer)
    rng = np.random.default_rng(0)
    completions = [rng.integers(0, vocab, size=n).tolist() for n in (5, 2, 7, 1, 4, 6)]  # G = 3

    results = {}
    for shared in (True, False):
        policy.zero_grad()
        prompts = [policy.build_inputs(build_messages(modalities=m), policy.encode(clip_for(policy, i, m)))
                   for i, m in enumerate([("video", "audio"), ("audio",)])]
        logprobs, mask = policy.completion_logprobs(prompts, completions, shared_prefix=shared)
        (logprobs.sum() + (logprobs * torch.arange(logprobs.shape[1])).sum()).backward()
        grads = {n: p.grad.clone() for n, p in policy.named_parameters() if p.grad is not None}
        results[shared] = (logprobs.detach(), mask, grads)
    policy.eval()
    (lp_shared, mask_shared, g_shared), (lp_repeat, mask_repeat, g_repeat) = results[True], results[False]
    assert torch.equal(mask_shared, mask_repeat) and mask_shared.sum() == 25
    assert relative(lp_shared, lp_repeat) < 1e-4
    assert set(g_shared) == set(g_repeat) and len(g_shared) > 10
    assert any("projectors" in n for n in g_shared)  # gradients reach the projectors through the cache
    for name in g_repeat:
        assert relative(g_shared[name], g_repeat[name]) < 1e-4, name


def test_generation_is_reproducible_and_stops(policy):
    prompt = policy.prompt(build_messages(), clip_for(policy))
    first = policy.generate([prompt, prompt], num_generations=3, max_new_tokens=12, seed=3)
    again = policy.generate([prompt, prompt], num_generations=3, max_new_tokens=12, seed=3)
    assert [[c.ids for c in g] for g in first] == [[c.ids for c in g] for g in again]
    assert len(first) == 2 and all(len(g) == 3 for g in first)
    assert all(len(c.ids) <= 12 for g in first for c in g)
    other = policy.generate([prompt], num_generations=3, max_new_tokens=12, seed=4)
    assert [c.ids for c in other[0]] != [c.ids for c in first[0]]
    greedy = policy.generate([prompt], num_generations=2, max_new_tokens=6, temperature=0)
    assert greedy[0][0].ids == greedy[0][1].ids
    # a stop token ends a completion and is not part of it
    token = first[0][0].ids[0]
    stopped = policy.generate([prompt], num_generations=1, max_new_tokens=12, seed=3, stop=[token])
    assert stopped[0][0].ids == [] and stopped[0][0].stopped


@pytest.mark.parametrize("cascade", [True, False], ids=["cascade", "repeated-prefix"])
def test_decoding_equals_the_full_forward_pass(policy, cascade):
    """generate()'s decoding, one token at a time after the prefill: over one copy of each
    prompt's cache (cascade attention) or over G copies in preallocated buffers. Its logits equal
    those of a plain forward pass over prompt + completion, for prompts of different lengths
    (left padding)."""
    from r1omni.models.shared_prefix import _decoding_steps

    prompts = [policy.build_inputs(build_messages(modalities=m), policy.encode(clip_for(policy, i, m)))
               for i, m in enumerate([("video", "audio"), ("audio",)])]
    G, steps = 2, 5
    completions = np.random.default_rng(0).integers(0, len(policy.tokenizer), (2 * G, steps))  # [B, steps]
    with torch.no_grad():
        expected, _ = policy.completion_logits(prompts, completions.tolist(), shared_prefix=False)  # [B, steps, V]
        first, prefix, mask, positions = policy._prefill(prompts)
        place = policy._continue(positions, G, steps)
        got = [first.repeat_interleave(G, 0)]
        with _decoding_steps(policy.lm, prefix, mask, G, steps, cascade) as feed:
            for step in range(steps - 1):
                got.append(feed(torch.from_numpy(completions[:, step]), place[..., step : step + 1]))
    assert relative(torch.stack(got, 1), expected) < 1e-4
    # and generate() itself, greedy, follows the same logits
    greedy = [c.ids for g in policy.generate(prompts, G, max_new_tokens=steps, temperature=0, stop=[],
                                             cascade=cascade) for c in g]
    with torch.no_grad():
        logits, _ = policy.completion_logits(prompts, greedy, shared_prefix=False)
    assert logits.argmax(-1).tolist() == greedy


def test_sampling_follows_the_distribution_and_never_draws_impossible_tokens():
    from r1omni.models.shared_prefix import _sample

    probs = torch.tensor([0.5, 0.0, 0.3, 0.2, 0.0])
    logits = torch.log(probs).expand(4000, -1)  # [B, V], -inf where impossible
    draws = _sample(logits, 1.0, 1.0, torch.Generator().manual_seed(0))
    counts = torch.bincount(draws, minlength=5).float() / len(draws)
    assert counts[1] == 0 and counts[4] == 0
    assert torch.allclose(counts, probs, atol=0.03)
    assert _sample(torch.log(probs)[None], 0.0, 1.0, torch.Generator()).tolist() == [0]  # greedy


def test_top_p_keeps_only_the_nucleus():
    from r1omni.models.shared_prefix import _sample

    logits = torch.log(torch.tensor([[0.6, 0.3, 0.05, 0.05]]))
    generator = torch.Generator().manual_seed(0)
    draws = {int(_sample(logits, 1.0, 0.5, generator)) for _ in range(50)}
    assert draws == {0}
    draws = {int(_sample(logits, 1.0, 0.85, generator)) for _ in range(200)}
    assert draws == {0, 1}


def test_save_and_load_round_trip(policy, tmp_path):
    clip = clip_for(policy)
    prompt = policy.prompt(build_messages(), clip)
    completions = [[5, 6, 7]]
    before, _ = policy.completion_logprobs([prompt], completions)
    policy.save_pretrained(tmp_path / "model")
    loaded = OmniPolicy.from_pretrained(tmp_path / "model").eval()
    assert loaded.config == policy.config
    after, _ = loaded.completion_logprobs([loaded.prompt(build_messages(), clip)], completions)
    assert torch.allclose(before, after, atol=1e-6)
    assert loaded.tokenizer.apply_chat_template(build_messages(), tokenize=False, add_generation_prompt=True) == \
        policy.tokenizer.apply_chat_template(build_messages(), tokenize=False, add_generation_prompt=True)


def test_nano_is_small_and_composed_freezes_towers(nano_policy, composed_policy):
    from r1omni.models.composed import NANO_LM

    assert nano_policy.config.backend == "composed" and NANO_LM["hidden_size"] == 256
    assert all(p.requires_grad for p in nano_policy.parameters())
    assert not any(p.requires_grad for p in composed_policy.towers.parameters())
    assert all(p.requires_grad for p in composed_policy.projectors.parameters())


def test_nano_towers_pool_to_fewer_tokens():
    import numpy as np

    from r1omni.models.towers import NanoAudioTower, NanoVisionTower

    audio = np.random.default_rng(0).normal(size=16_000).astype(np.float32)  # 1 s: 101 mel frames
    fine, coarse = NanoAudioTower({"width": 8}), NanoAudioTower({"width": 8, "pool": 4})
    assert fine(fine.preprocess(audio)).shape == (13, 8)  # one token per 80 ms
    assert coarse(coarse.preprocess(audio)).shape == (4, 8)  # ceil(13 / 4)
    frames = np.zeros((3, 112, 112, 3), dtype=np.uint8)
    assert NanoVisionTower({"width": 8, "grid": 1})(NanoVisionTower({"width": 8}).preprocess(frames)).shape == (3, 8)


def test_default_nano_preset_is_under_20m_parameters():
    from r1omni.models import nano

    policy = nano(["a tiny corpus for the tokenizer"] * 10, vocab_size=300)
    assert policy.lm.config.hidden_size == 256 and policy.lm.config.num_hidden_layers == 4
    assert sum(p.numel() for p in policy.parameters()) < 20_000_000


def test_feature_cache_skips_frozen_towers_and_survives_corruption(tmp_path, make_composed):
    policy = make_composed()
    policy.feature_cache = FeatureCache(tmp_path / "cache")
    calls = {"video": 0, "audio": 0}
    for modality, tower in policy.towers.items():
        original = tower.forward

        def counted(x, modality=modality, original=original):
            calls[modality] += 1
            return original(x)

        tower.forward = counted
    clip = clip_for(policy)
    first = policy.encode(clip)
    second = policy.encode(clip)
    assert calls == {"video": 1, "audio": 1}
    assert policy.feature_cache.hits == 2 and policy.feature_cache.misses == 2
    for modality in first:
        assert torch.allclose(first[modality], second[modality])
    entries = sorted((tmp_path / "cache").rglob("*.safetensors"))
    assert len(entries) == 2
    entries[0].write_bytes(b"garbage")
    third = policy.encode(clip)
    assert calls["video"] + calls["audio"] == 3 and policy.feature_cache.misses == 3
    for modality in first:
        assert torch.allclose(first[modality], third[modality])
    # other content, another entry; a changed tower (new weights) does not reuse old entries
    policy.encode(clip_for(policy, index=1))
    assert calls["video"] + calls["audio"] == 5
    before = dict(calls)
    tower = policy.towers["audio"]
    with torch.no_grad():
        next(tower.parameters()).add_(1.0)
    tower.forget_fingerprint()
    policy.encode(clip)
    assert calls == {"video": before["video"], "audio": before["audio"] + 1}


@pytest.mark.parametrize("change, message", [
    (dict(towers={"video": {"kind": "resnet"}}), "unknown video tower kind 'resnet'"),
    (dict(towers={"audio": {"kind": "nano_cnn"}}), "encodes video, not audio"),
    (dict(backend="magic"), "unknown backend"),
    (dict(frozen=["eyes"]), "frozen parts"),
    (dict(lm={"hidden_size": 8}), "needs a model_type"),
    (dict(lm={"model_type": "no-such-lm"}), "cannot build the LM"),
])
def test_bad_configs_are_clear_errors(nano_policy, change, message):
    from dataclasses import asdict

    config = PolicyConfig(**{**asdict(nano_policy.config), **change})
    with pytest.raises(ConfigError, match=message):
        ComposedPolicy(config, nano_policy.tokenizer)


def test_weights_that_do_not_fit_the_config(nano_policy, tmp_path):
    import json

    nano_policy.save_pretrained(tmp_path / "m")
    config_path = tmp_path / "m" / "r1omni_config.json"
    data = json.loads(config_path.read_text())
    data["projector_hidden"] = 48
    config_path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="weights do not fit"):
        OmniPolicy.from_pretrained(tmp_path / "m")
    with pytest.raises(ConfigError, match="not a saved r1omni model"):
        OmniPolicy.from_pretrained(tmp_path)


def test_nano_generates_text_from_a_written_synthetic_clip(nano_policy, tmp_path):
    write_world(WorldConfig(seed=2, sizes={"test": 1}), tmp_path, splits=("test",))
    row = read_manifest(tmp_path / "test.jsonl")[0]
    clip = nano_policy.read_clip(row.video, row.audio)
    assert clip.frames.shape == (8, 112, 112, 3) and clip.audio.ndim == 1
    (completion,) = nano_policy.generate([nano_policy.prompt(build_messages(), clip)], max_new_tokens=8, seed=0)[0]
    assert completion.ids and isinstance(completion.text, str) and completion.text
    assert set(PLACEHOLDERS) == {"video", "audio"}


def test_cache_build_cli_fills_the_cache_and_reports_bad_clips(make_composed, tmp_path, capsys):
    from r1omni.cli import main
    from r1omni.data import write_manifest
    from r1omni.data.manifest import ClipRow

    write_world(WorldConfig(seed=4, sizes={"test": 2}), tmp_path / "world", splits=("test",))
    rows = read_manifest(tmp_path / "world" / "test.jsonl")
    broken = tmp_path / "broken.mp4"
    broken.write_text("not a video")
    rows.append(ClipRow(id="broken", label="sad", dataset="x", video=str(broken), audio=str(broken)))
    write_manifest(rows, tmp_path / "m.jsonl")
    make_composed().save_pretrained(tmp_path / "model")
    args = ["cache", "build", "--manifest", str(tmp_path / "m.jsonl"), "--model", str(tmp_path / "model"),
            "--cache", str(tmp_path / "cache")]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "3 clips: 4 features computed, 0 already cached, 1 failed" in out and "broken.mp4" in out
    assert len(list((tmp_path / "cache").rglob("*.safetensors"))) == 4
    assert main(args) == 0
    assert "0 features computed, 4 already cached" in capsys.readouterr().out


def test_gradient_checkpointing_falls_back_to_the_repeated_prefix_with_equal_results(nano_policy):
    import copy

    policy = copy.deepcopy(nano_policy).train()
    prompt = policy.prompt(build_messages(), clip_for(policy))
    plain, _ = policy.completion_logprobs([prompt], [[5, 6, 7], [8, 9]])
    policy.enable_checkpointing()
    prompt = policy.prompt(build_messages(), clip_for(policy))
    checkpointed, _ = policy.completion_logprobs([prompt], [[5, 6, 7], [8, 9]])
    checkpointed.sum().backward()
    assert relative(checkpointed.detach(), plain.detach()) < 1e-4
    assert next(policy.projectors.parameters()).grad is not None


def test_lora_adapters_train_alone_and_survive_save_and_load(nano_policy, tmp_path):
    import copy

    policy = copy.deepcopy(nano_policy)
    policy.add_lora(r=4, alpha=8)
    lm_trainable = [n for n, p in policy.lm.named_parameters() if p.requires_grad]
    assert lm_trainable and all("lora_" in n for n in lm_trainable)
    with torch.no_grad():  # adapters start at zero; give them a value to round-trip
        for name, parameter in policy.lm.named_parameters():
            if "lora_B" in name:
                parameter.add_(0.01)
    prompt = policy.prompt(build_messages(), clip_for(policy))
    before, _ = policy.completion_logprobs([prompt], [[5, 6, 7]])
    policy.save_pretrained(tmp_path / "lora")
    loaded = OmniPolicy.from_pretrained(tmp_path / "lora").eval()
    assert loaded.config.lora["r"] == 4
    after, _ = loaded.completion_logprobs([loaded.prompt(build_messages(), clip_for(loaded))], [[5, 6, 7]])
    assert torch.allclose(before, after, atol=1e-6)
    with pytest.raises(ConfigError, match="already has LoRA"):
        loaded.add_lora()


def test_clips_whose_features_are_cached_are_not_decoded(make_composed, tmp_path, monkeypatch):
    import r1omni.models.base as base

    write_world(WorldConfig(seed=4, sizes={"test": 1}), tmp_path / "world", splits=("test",))
    row = read_manifest(tmp_path / "world" / "test.jsonl")[0]
    policy = make_composed()
    policy.feature_cache = FeatureCache(tmp_path / "cache")
    decoded = policy.read_clip(row.video, row.audio)
    assert decoded.frames is not None and decoded.cached == ()
    before = policy.encode(decoded)  # fills the cache
    monkeypatch.setattr(base, "read_frames", lambda *a, **k: pytest.fail("decoded a cached clip"))
    monkeypatch.setattr(base, "read_audio", lambda *a, **k: pytest.fail("decoded a cached clip"))
    cached = policy.read_clip(row.video, row.audio)
    assert cached.frames is None and cached.audio is None and cached.cached == ("video", "audio")
    after = policy.encode(cached)
    assert all(torch.allclose(before[m], after[m]) for m in ("video", "audio"))
    prompt = policy.prompt(build_messages(modalities=cached.present()), cached)
    assert (prompt.ids == -1).sum() == sum(len(e) for e in after.values())


def test_building_a_policy_leaves_the_callers_config_as_given():
    import copy

    from r1omni.models.composed import NANO_LM
    from r1omni.models.tokenizer import TINY_CORPUS, train_nano_tokenizer

    tokenizer = train_nano_tokenizer(TINY_CORPUS, 300)
    lm = {**NANO_LM, "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 64,
          "num_hidden_layers": 1, "num_attention_heads": 2, "num_key_value_heads": 1}
    config = PolicyConfig(backend="composed", lm=lm, towers={"video": {"kind": "frame_cnn", "channels": 8, "width": 16},
                                                             "audio": {"kind": "mel_cnn", "width": 16}},
                          projector_hidden=32, frozen=["video"])
    given = copy.deepcopy(config)
    policy = ComposedPolicy(config, tokenizer)
    assert config == given  # the caller's config is as it was
    assert policy.config != given and len(policy.config.lm) > len(given.lm)  # the policy's records the parts as built
    assert not any(p.requires_grad for p in policy.towers["video"].parameters())
    assert all(p.requires_grad for p in policy.towers["audio"].parameters()) and not policy.towers["video"].training
