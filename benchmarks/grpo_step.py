"""One full GRPO step (rollout, rewards, log-probs, update) at R1-Omni's token proportions.

Modes, in one process, on the same model, data, rewards and loss:
  (a) original: the published R1-Omni scheme (towers for every completion, prompt repeated G times)
  (b) r1omni:   cached frozen-tower features, the shared prefix, cascade decoding
  (c) TRL:      `trl.GRPOTrainer` on the same LM with text prompts of the same token length (the
                text-only path; no media)
The modes take their steps in turn (a, b, c, a, b, c, ...: TRL drives, the others step from its
callback), so that a change in the machine's load hits all of them alike. Each mode's first step
is a warm-up, counted for FLOPs (torch's FlopCounterMode) but not timed. Prints the median and
range of seconds per step, the ratios a/b and c/b, FLOPs per step and the share of this
machine's measured matrix-product peak each mode reaches, and a JSON line.

Run: ``python benchmarks/grpo_step.py [--shapes toy|r1omni-0.5b] [--steps 5] [--device cuda --bf16]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).parent))
from omni_setup import (  # noqa: E402
    SHAPES,
    PeakRSS,
    build_model,
    make_trainer,
    pick_shapes,
    prompt_length,
    sync,
    workdir,
    write_clips,
)


def matmul_peak(device: str, dtype: torch.dtype, seconds: float = 2.0) -> float:
    """This machine's matrix-product rate (FLOP/s): the best of repeated square products, as big
    as the machine makes worthwhile, in the benchmark's own dtype."""
    n = 8192 if device.startswith("cuda") else 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best, started = 0.0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        sync(device)
        tick = time.perf_counter()
        for _ in range(4):
            a @ b
        sync(device)
        best = max(best, 4 * 2 * n**3 / (time.perf_counter() - tick))
    return best


def _attention_flops(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    """Scores and weighted values of fused attention ``[B, Hq, Lq, d]`` over ``[B, Hkv, Lk, d]``
    (grouped-query heads too, which some torch releases' own formula rejects)."""
    b, heads, lq, d = query_shape
    return 2 * b * heads * lq * key_shape[2] * (d + value_shape[3])


def _attention_backward_flops(grad_shape, query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    """Its backward: four products of the forward's size (dP, dV, dQ, dK), as torch counts it."""
    b, heads, lq, d = query_shape
    return 4 * 2 * b * heads * lq * key_shape[2] * d


def _addmm_flops(bias_shape, a_shape, b_shape, *args, **kwargs) -> int:
    """addmm's product; tolerant of the out_dtype argument TRL's kernels pass (torch 2.11's own
    formula fails on it)."""
    return 2 * a_shape[0] * a_shape[1] * b_shape[1]


ATTENTION_OPS = {name: _attention_flops for name in (
    "_scaled_dot_product_efficient_attention", "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_cudnn_attention", "_scaled_dot_product_flash_attention_for_cpu")}
ATTENTION_OPS.update({f"{name}_backward": _attention_backward_flops for name in list(ATTENTION_OPS)})
FLOP_FORMULAS = {getattr(torch.ops.aten, name): formula for name, formula in ATTENTION_OPS.items()
                 if hasattr(torch.ops.aten, name)}
FLOP_FORMULAS[torch.ops.aten.addmm] = _addmm_flops


class Mode:
    """One mode's steps: seconds of each timed step, FLOPs of its warm-up step, stage seconds and
    peak memory (CPU: resident memory above the step's start; GPU: allocated)."""

    def __init__(self, name: str, device: str):
        self.name, self.device = name, device
        self.times, self.flops, self.peak_mb, self.stages = [], None, 0.0, {}

    def begin(self, warmup: bool) -> None:
        """Start a step: warm-up (FLOPs counted) or timed."""
        sync(self.device)
        if self.device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        self.warmup = warmup
        self.counter = FlopCounterMode(display=False, custom_mapping=FLOP_FORMULAS).__enter__() if warmup else None
        self.memory = PeakRSS().__enter__()
        self.started = time.perf_counter()

    def end(self, metrics: dict | None = None) -> None:
        sync(self.device)
        seconds = time.perf_counter() - self.started
        self.memory.__exit__(None, None, None)
        if self.warmup:
            self.counter.__exit__(None, None, None)
            self.flops = self.counter.get_total_flops()
            return
        self.times.append(seconds)
        used = torch.cuda.max_memory_allocated() / 2**20 if self.device.startswith("cuda") else self.memory.megabytes
        self.peak_mb = max(self.peak_mb, used)
        for key, value in (metrics or {}).items():
            if key.startswith("time_"):
                self.stages[key[5:]] = self.stages.get(key[5:], 0.0) + value

    def result(self, peak: float) -> dict:
        median = statistics.median(self.times)
        stages = {k: round(v / len(self.times), 3) for k, v in self.stages.items()}
        return {"mode": self.name, "step_s": round(median, 3), "min_s": round(min(self.times), 3),
                "max_s": round(max(self.times), 3), "steps_s": [round(t, 3) for t in self.times],
                "flops": self.flops, "tflop_per_s": round(self.flops / median / 1e12, 3),
                "peak_share": round(self.flops / median / peak, 4), "peak_mb": round(self.peak_mb),
                "stages_s": stages}


def omni_steps(trainers: dict, modes: dict[str, Mode], step: int, warmup: bool) -> None:
    """Step `step` of each r1omni-trainer mode, in turn."""
    for name, trainer in trainers.items():
        modes[name].begin(warmup)
        modes[name].end(trainer.train_step(step))


def trl_trainer(model: Path, length: int, args, clock: Mode, after):
    """TRL's GRPOTrainer on the policy's LM: text prompts of `length` tokens, the same G,
    completion length, KL weight and loss. Its steps are timed by `clock`; `after(step)` runs
    after each one."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from r1omni.models import OmniPolicy
    from r1omni.rewards import accuracy_reward, format_reward

    policy = OmniPolicy.from_pretrained(model, device="cpu")
    tokenizer = policy.tokenizer
    words = ("the face shows a smile and the voice rises " * (length // 4 + 8)).split()
    prompts = []
    for i in range(args.prompts * (args.steps + 1)):
        ids = tokenizer(" ".join(words[i:]), add_special_tokens=False)["input_ids"][:length]
        prompts.append(tokenizer.decode(ids))
    labels = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]
    data = Dataset.from_dict({"prompt": prompts, "solution": [labels[i % 7] for i in range(len(prompts))]})

    def accuracy(completions, solution, **kwargs):
        return accuracy_reward(completions, solution)

    def formatted(completions, **kwargs):
        return format_reward(completions)

    class Interleave(TrainerCallback):
        """Times TRL's steps, and after each one takes the same step in the other modes."""

        def on_step_begin(self, _args, state, *a, **k):
            clock.begin(state.global_step == 0)

        def on_step_end(self, _args, state, *a, **k):
            clock.end()
            after(state.global_step - 1)

    config = GRPOConfig(
        output_dir=str(workdir() / "trl"), model_init_kwargs={"dtype": "float32"},
        per_device_train_batch_size=args.prompts * args.G, num_generations=args.G,
        max_completion_length=args.completion, beta=0.04, loss_type="grpo", learning_rate=1e-6,
        max_steps=args.steps + 1, logging_steps=1, report_to="none", save_strategy="no", use_cpu=args.device == "cpu",
        bf16=args.bf16, gradient_checkpointing=False, disable_tqdm=True, temperature=1.0, seed=0,
        generation_kwargs={"min_new_tokens": args.completion}, shuffle_dataset=False,
    )
    lm_dir = workdir() / "lm"  # TRL builds its reference model from a path
    policy.lm.save_pretrained(lm_dir)
    return GRPOTrainer(model=str(lm_dir), reward_funcs=[accuracy, formatted], args=config, train_dataset=data,
                       processing_class=tokenizer, callbacks=[Interleave()])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", choices=list(SHAPES), default="toy",
                        help="toy: every part 256 wide, 4 layers (default); r1omni-0.5b: Qwen2.5-0.5B, SigLIP base, "
                             "Whisper-large-v3's encoder")
    parser.add_argument("--width", type=int, help="toy shapes: width of every part (default 256)")
    parser.add_argument("--layers", type=int, help="toy shapes: layers of every part (default 4)")
    parser.add_argument("--prompts", type=int, default=2, help="prompts per step (default 2)")
    parser.add_argument("--G", type=int, default=8, help="completions per prompt (default 8)")
    parser.add_argument("--completion", type=int, default=128, help="completion tokens (default 128)")
    parser.add_argument("--steps", type=int, default=5, help="timed steps per mode after one warm-up (default 5)")
    parser.add_argument("--modes", default="original,r1omni,trl", help="which of original, r1omni, trl")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 weights and activations")
    args = parser.parse_args()
    torch.manual_seed(0)
    names = [m.strip() for m in args.modes.split(",") if m.strip()]
    if "r1omni" not in names:
        parser.error("--modes must include r1omni (the ratios are against it)")
    shapes = pick_shapes(args.shapes, args.width, args.layers)
    dtype = torch.bfloat16 if args.bf16 else torch.float32
    peak = matmul_peak(args.device, dtype)

    work = workdir()
    model = build_model(work / "model", shapes)
    manifest = write_clips(work / "clips", args.prompts * (args.steps + 1))
    length = prompt_length(model, manifest)
    settings = {"device": args.device, "dtype": "bfloat16" if args.bf16 else "float32"}
    trainers = {name: make_trainer(name, model, manifest, work, args.prompts, args.G, args.completion, args.bf16)
                for name in names if name != "trl"}
    modes = {name: Mode(name, args.device) for name in names}
    if "trl" in names:
        interleaved = lambda step: omni_steps(trainers, modes, step, step == 0)  # noqa: E731
        trl_trainer(model, length, args, modes["trl"], interleaved).train()
    else:
        for step in range(args.steps + 1):
            omni_steps(trainers, modes, step, step == 0)

    results = [modes[name].result(peak) for name in names]
    by_mode = {r["mode"]: r for r in results}
    fast = by_mode["r1omni"]["step_s"]
    load = os.getloadavg()
    print(f"GRPO step ({args.shapes} shapes): {args.prompts} prompts x G {args.G}, prompt {length} tokens (8 frames "
          f"x 49 + 500 audio + text), {args.completion}-token completions, {settings['dtype']} on {args.device}; "
          f"{args.steps} timed steps per mode, interleaved; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"matrix-product peak measured here: {peak / 1e12:.2f} TFLOP/s")
    print(f"{'mode':<10}{'median s':>10}{'range s':>16}{'vs r1omni':>11}{'TFLOP/step':>12}{'TFLOP/s':>9}"
          f"{'of peak':>9}{'peak MB':>9}")
    for r in results:
        print(f"{r['mode']:<10}{r['step_s']:>10.2f}{r['min_s']:>8.2f}-{r['max_s']:<7.2f}{r['step_s'] / fast:>10.2f}x"
              f"{r['flops'] / 1e12:>12.2f}{r['tflop_per_s']:>9.3f}{r['peak_share']:>9.1%}{r['peak_mb']:>9}")
    for r in results:
        if r["stages_s"]:
            print(f"where {r['mode']}'s seconds go (per step): "
                  + ", ".join(f"{k} {v:.2f}" for k, v in r["stages_s"].items()))
    ratios = {f"{name}_over_r1omni": round(by_mode[name]["step_s"] / fast, 2) for name in names if name != "r1omni"}
    print(json.dumps({"benchmark": "grpo_step", "shapes": args.shapes, "prompt_tokens": length, "G": args.G,
                      **settings, "peak_flop_per_s": peak, "load_average": load, "ratios": ratios,
                      "results": results}))


if __name__ == "__main__":
    main()
