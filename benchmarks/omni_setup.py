"""Shared set-up of the GRPO benchmarks: an omni model at R1-Omni's token proportions with small
widths, clips on disk, and two step implementations over r1omni's own GRPO step:

- ``original``: the published R1-Omni scheme. Rollout with ``generate(num_return_sequences=G)``
  (the prompt prefilled G times); the policy and the reference then re-run the vision and audio
  towers and the whole prompt for every completion (1 + G + G = 17 tower passes per prompt at
  G = 8 with a KL term).
- ``r1omni``: frozen-tower features from the feature cache and the shared prefix (each prompt's
  prefix runs once per pass for all its G completions).

Both take the same data, rewards, loss and optimizer step: only the two design choices differ.
Completions are generated to the full length in both (no stop token) so both do equal work.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from r1omni.data.manifest import ClipRow, write_manifest
from r1omni.media.encode import write_video
from r1omni.models import composed
from r1omni.models.cache import fill_cache
from r1omni.models.shared_prefix import Completion
from r1omni.models.tokenizer import train_nano_tokenizer
from r1omni.rewards import reward_functions
from r1omni.rl.rollout import Rollout, score_groups
from r1omni.train.config import load_config
from r1omni.train.grpo import grpo_step
from r1omni.train.loop import TrainState, autocast, setup

# R1-Omni's proportions: 8 frames x 49 tokens (SigLIP 224/16 -> 14x14 pooled to 7x7), Whisper's
# 1,500 frames pooled by 3 -> 500 audio tokens, ~60 text tokens; 128-token completions.
NUM_FRAMES, FRAME_SIZE, PATCH, VISION_POOL, AUDIO_POOL = 8, 224, 16, 7, 3
CORPUS = ["As an emotional recognition expert; throughout the video, which emotion conveyed by the characters is "
          "the most obvious to you? Output the thinking process in <think> </think> and final emotion in "
          "<answer> </answer> tags.", "happy sad neutral angry surprise disgust fear", "the face and the voice"] * 20


@dataclass(frozen=True)
class Shapes:
    """Sizes of the benchmark model's parts: LM, vision tower (SigLIP), audio tower (Whisper encoder)."""

    lm_width: int
    lm_layers: int
    lm_heads: int
    lm_kv_heads: int
    lm_ffn: int
    vocab: int
    vision_width: int
    vision_layers: int
    vision_heads: int
    vision_ffn: int
    audio_width: int
    audio_layers: int
    audio_heads: int
    audio_ffn: int

    @classmethod
    def toy(cls, width: int = 256, layers: int = 4) -> Shapes:
        """One width and depth for every part (the figures before --shapes existed)."""
        heads = max(1, width // 64)
        return cls(width, layers, heads, max(1, heads // 2), width * 3, 2048,
                   width, layers, heads, width * 3, width, layers, heads, width * 3)


# R1-Omni-0.5B's parts (HumanOmni-0.5B): Qwen2.5-0.5B, SigLIP base patch16-224, Whisper-large-v3's encoder.
SHAPES = {
    "toy": Shapes.toy(),
    "r1omni-0.5b": Shapes(lm_width=896, lm_layers=24, lm_heads=14, lm_kv_heads=2, lm_ffn=4864, vocab=151936,
                          vision_width=768, vision_layers=12, vision_heads=12, vision_ffn=3072,
                          audio_width=1280, audio_layers=32, audio_heads=20, audio_ffn=5120),
}


def pick_shapes(name: str, width: int | None = None, layers: int | None = None) -> Shapes:
    """The named shapes, or toy shapes of the given width and depth when either is given."""
    return SHAPES[name] if width is None and layers is None else Shapes.toy(width or 256, layers or 4)


def build_model(out: Path, shapes: Shapes | None = None, num_frames: int = NUM_FRAMES,
                audio_pool: int = AUDIO_POOL) -> Path:
    """A composed Qwen2 + SigLIP + Whisper-encoder policy with random weights at `shapes`, saved to `out`.
    The tokenizer is the small nano one; the LM keeps `shapes.vocab` rows (ids past the tokenizer
    decode to nothing), so its embedding and output layers have their real size."""
    from transformers import Qwen2Config, Qwen2ForCausalLM, SiglipVisionConfig, SiglipVisionModel, WhisperConfig
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    s = shapes or SHAPES["toy"]
    torch.manual_seed(0)
    tokenizer = train_nano_tokenizer(CORPUS, min(s.vocab, 2048))
    lm = Qwen2ForCausalLM(Qwen2Config(vocab_size=s.vocab, hidden_size=s.lm_width, intermediate_size=s.lm_ffn,
                                      num_hidden_layers=s.lm_layers, num_attention_heads=s.lm_heads,
                                      num_key_value_heads=s.lm_kv_heads, max_position_embeddings=4096,
                                      tie_word_embeddings=True))
    vision = SiglipVisionModel(SiglipVisionConfig(image_size=FRAME_SIZE, patch_size=PATCH, hidden_size=s.vision_width,
                                                  num_hidden_layers=s.vision_layers,
                                                  num_attention_heads=s.vision_heads, intermediate_size=s.vision_ffn))
    audio = WhisperEncoder(WhisperConfig(d_model=s.audio_width, encoder_layers=s.audio_layers,
                                         encoder_attention_heads=s.audio_heads, encoder_ffn_dim=s.audio_ffn,
                                         num_mel_bins=128, max_source_positions=1500))
    policy = composed(lm, tokenizer, vision, audio, vision_pool=VISION_POOL, audio_pool=audio_pool,
                      frame_size=FRAME_SIZE, num_frames=num_frames, projector_hidden=s.lm_width)
    if policy.lm.get_input_embeddings().num_embeddings < s.vocab:  # composed() fits it to the tokenizer
        policy.lm.resize_token_embeddings(s.vocab)
        policy.config.lm["vocab_size"] = s.vocab
    return policy.save_pretrained(out)


def write_clips(out: Path, count: int, seconds: float = 4.0) -> Path:
    """`count` distinct noisy 224 px clips with a tone, and their manifest."""
    rng = np.random.default_rng(0)
    labels = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]
    rows = []
    for i in range(count):
        frames = [rng.integers(0, 256, (FRAME_SIZE, FRAME_SIZE, 3), dtype=np.uint8) for _ in range(int(seconds * 10))]
        t = np.arange(int(seconds * 16_000)) / 16_000
        path = write_video(out / f"clip_{i}.mp4", frames, fps=10, audio=0.3 * np.sin(2 * np.pi * (180 + 20 * i) * t))
        rows.append(ClipRow(f"clip_{i}", labels[i % len(labels)], "bench", str(path), str(path)))
    return write_manifest(rows, out / "clips.jsonl")


def step_config(model: Path, manifest: Path, out: Path, prompts: int, G: int, completion: int, cache: str,
                bf16: bool = False):
    """The paper's GRPO settings (KL 0.04, loss grpo) at the benchmark's sizes; one micro-batch
    per prompt group; `bf16` autocasts the passes (weights stay float32)."""
    overrides = [f"model.path={model}", f"data.train={manifest}", f"train.output_dir={out}", "grpo.preset=r1omni",
                 f"grpo.num_generations={G}", f"train.batch_size={prompts * G}", f"train.micro_batch_size={G}",
                 f"grpo.max_completion_length={completion}", "train.max_steps=1000", f"model.feature_cache={cache}",
                 f"model.bf16={str(bf16).lower()}"]
    return load_config(None, overrides, kind="grpo")


def original_rollout(state: TrainState, timer) -> Rollout:
    """R1-Omni's published rollout: towers run once per prompt, then `generate()` expands the
    prompt G times before prefilling it (no feature cache, no shared prefix)."""
    g, policy = state.config.grpo, state.policy
    with timer("read"):
        examples = state.stream.next_examples(state.config.train.batch_size // g.num_generations)
    torch.manual_seed(state.step)
    groups = []
    policy.eval()
    with torch.no_grad(), timer("generate"), autocast(state):
        for example in examples:
            prompt = policy.prompt(example.messages, example.media)
            ids = policy.lm.generate(
                inputs_embeds=prompt.embeds[None],
                attention_mask=torch.ones_like(prompt.ids, device=policy.device)[None],
                do_sample=True, temperature=g.temperature, top_p=g.top_p, num_return_sequences=g.num_generations,
                max_new_tokens=g.max_completion_length, min_new_tokens=g.max_completion_length,
                pad_token_id=policy.tokenizer.pad_token_id)
            groups.append([Completion(row.tolist(), policy.tokenizer.decode(row), False) for row in ids])
    policy.train()
    with timer("reward"):
        rewards = reward_functions(g.reward_weights, g.accuracy_mode)
        return score_groups(policy, examples, groups, rewards, g.reward_weights, g.accuracy_mode)


def original_logprobs(state: TrainState, model, examples, completions, grad: bool):
    """R1-Omni's published log-probs: the towers and the whole prompt run again for every completion."""
    G = len(completions) // len(examples)
    with torch.set_grad_enabled(grad), autocast(state):
        prompts = [model.prompt(e.messages, e.media) for e in examples for _ in range(G)]
        return model.completion_logprobs(prompts, completions, shared_prefix=False,
                                         temperature=state.config.grpo.temperature or 1.0)


@dataclass
class StepRun:
    """A training state and the GRPO step a benchmark mode times, step by step."""

    state: TrainState
    rollout: object = None  # grpo_step's default stages when None
    logprobs: object = None
    cache_build_s: float = 0.0

    def train_step(self, step: int) -> dict:
        self.state.step = step
        return grpo_step(self.state, self.rollout, self.logprobs)


def make_trainer(mode: str, model: Path, manifest: Path, out: Path, prompts: int, G: int,
                 completion: int, bf16: bool = False) -> StepRun:
    """``original``: no feature cache, the published rollout and log-probs; ``r1omni``: a feature
    cache filled before timing (as `r1omni cache build` does once per dataset), `cache_build_s` set."""
    cache = str(out / "cache") if mode == "r1omni" else "none"
    state = setup(step_config(model, manifest, out / mode, prompts, G, completion, cache, bf16))
    if mode == "original":
        return StepRun(state, original_rollout, original_logprobs)
    state.policy.stop_ids = []  # full-length completions, as in the original mode
    started = time.perf_counter()
    fill_cache(state.policy, state.rows, state.policy.feature_cache)
    return StepRun(state, cache_build_s=round(time.perf_counter() - started, 2))


def prompt_length(model: Path, manifest: Path) -> int:
    """Tokens of the first clip's prompt (media and text) for `model`."""
    from r1omni.data import read_manifest
    from r1omni.models import OmniPolicy
    from r1omni.train.stream import make_example

    policy = OmniPolicy.from_pretrained(model, device="cpu")
    example = make_example(read_manifest(manifest)[0], policy, ("video", "audio"))
    return len(policy.prompt(example.messages, example.media).ids)


class PeakRSS:
    """Peak resident memory above the starting point while the block runs (Linux /proc sampling).
    Memory freed earlier is first handed back to the system, so a block that reuses it still
    counts what it needs."""

    def __enter__(self):
        _release_freed_memory()
        self.start = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())

    @property
    def megabytes(self) -> float:
        return (self.peak - self.start) / 2**20


def _release_freed_memory() -> None:
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)  # glibc keeps freed blocks otherwise
    except (OSError, AttributeError):
        pass


def _rss() -> int:
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def time_steps(trainer: StepRun, steps: int, warmup: int = 1):
    """Seconds of each timed step (after `warmup` untimed ones), the peak memory above the loaded
    model that all of them took (the first step allocates the buffers and optimizer states), and
    the mean seconds per step of each stage the trainer times (``time_<stage>`` metrics: read,
    generate, reward, advantages, old/ref log-probs, update)."""
    times, stages = [], {}
    with PeakRSS() as memory:
        for step in range(warmup):
            trainer.train_step(step)
        for step in range(warmup, warmup + steps):
            started = time.perf_counter()
            metrics = trainer.train_step(step)
            times.append(time.perf_counter() - started)
            for key, value in metrics.items():
                if key.startswith("time_"):
                    stages[key[5:]] = stages.get(key[5:], 0.0) + value / steps
    stages["other"] = sum(times) / steps - sum(stages.values())
    return times, memory.megabytes, {k: round(v, 3) for k, v in stages.items()}


def sync(device: str) -> None:
    """Wait for queued GPU work, so that a timer reads the work done."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="r1omni-bench-"))
