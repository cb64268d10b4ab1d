"""One full GRPO step (rollout, rewards, log-probs, update) at R1-Omni's token proportions.

Modes, in one process, on the same model, data, rewards and loss:
  (a) original: the published R1-Omni scheme (towers for every completion, prompt repeated G times)
  (b) r1omni:   cached frozen-tower features and the shared prefix
  (c) TRL:      `trl.GRPOTrainer` on the same LM with text prompts of the same token length (the
                text-only path; no media)
Prints seconds per step, the ratios a/b and c/b, peak memory above the loaded models in each mode, and a
JSON line. Run: ``python benchmarks/grpo_step.py [--prompts 2] [--steps 2] [--device cuda --bf16]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from omni_setup import (  # noqa: E402
    PeakRSS,
    build_model,
    make_trainer,
    prompt_length,
    time_steps,
    workdir,
    write_clips,
)


def run_omni(mode: str, model: Path, manifest: Path, work: Path, args) -> dict:
    trainer = make_trainer(mode, model, manifest, work, args.prompts, args.G, args.completion)
    extra = {"cache_build_s": trainer.cache_build_s} if mode == "r1omni" else {}
    times, memory, per_step = time_steps(trainer, args.steps, warmup=1)
    return {"mode": mode, "step_s": statistics.median(times), "steps_s": [round(t, 3) for t in times],
            "peak_mb": round(memory), "stages_s": per_step, **extra}


def run_trl(model: Path, length: int, args) -> dict:
    """TRL's GRPOTrainer on the policy's LM: text prompts of `length` tokens, the same G,
    completion length, KL weight and loss."""
    from datasets import Dataset
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    from r1omni.models import OmniPolicy
    from r1omni.rewards import accuracy_reward, format_reward

    policy = OmniPolicy.from_pretrained(model, device="cpu" if args.device == "cpu" else "auto")
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

    times = []

    class Clock(TrainerCallback):
        def on_step_begin(self, *a, **k):
            self.started = time.perf_counter()

        def on_step_end(self, *a, **k):
            times.append(time.perf_counter() - self.started)

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
    trainer = GRPOTrainer(model=str(lm_dir), reward_funcs=[accuracy, formatted], args=config, train_dataset=data,
                          processing_class=tokenizer, callbacks=[Clock()])
    with PeakRSS() as memory:
        trainer.train()
    timed = times[1:]  # the first step warms up
    return {"mode": "trl", "step_s": statistics.median(timed), "steps_s": [round(t, 3) for t in timed],
            "peak_mb": round(memory.megabytes), "prompt_tokens": length}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=2, help="prompts per step (default 2)")
    parser.add_argument("--G", type=int, default=8, help="completions per prompt (default 8)")
    parser.add_argument("--completion", type=int, default=128, help="completion tokens (default 128)")
    parser.add_argument("--steps", type=int, default=2, help="timed steps per mode after one warm-up (default 2)")
    parser.add_argument("--width", type=int, default=256, help="hidden width of LM and towers (default 256)")
    parser.add_argument("--layers", type=int, default=4, help="layers of LM and towers (default 4)")
    parser.add_argument("--no-trl", action="store_true", help="skip mode (c)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--bf16", action="store_true", help="autocast to bfloat16")
    args = parser.parse_args()
    torch.manual_seed(0)

    work = workdir()
    model = build_model(work / "model", args.width, args.layers)
    manifest = write_clips(work / "clips", args.prompts * (args.steps + 1))
    length = prompt_length(model, manifest)
    results = [run_omni("original", model, manifest, work, args), run_omni("r1omni", model, manifest, work, args)]
    if not args.no_trl:
        results.append(run_trl(model, length, args))
    by_mode = {r["mode"]: r for r in results}
    fast = by_mode["r1omni"]["step_s"]
    print(f"GRPO step: {args.prompts} prompts x G {args.G}, prompt {length} tokens (8 frames x 49 + 500 audio + text), "
          f"{args.completion}-token completions, width {args.width}, {args.layers} layers, {args.device}")
    print(f"{'mode':<10}{'s/step':>10}{'vs r1omni':>11}{'peak MB':>10}")
    for r in results:
        print(f"{r['mode']:<10}{r['step_s']:>10.2f}{r['step_s'] / fast:>10.2f}x{r['peak_mb']:>10}")
    for r in results[:2]:
        stages = ", ".join(f"{k} {v:.2f}" for k, v in r["stages_s"].items())
        print(f"where {r['mode']}'s seconds go (per step): {stages}")
    ratios = {"original_over_r1omni": round(by_mode["original"]["step_s"] / fast, 2)}
    if "trl" in by_mode:
        ratios["trl_over_r1omni"] = round(by_mode["trl"]["step_s"] / fast, 2)
    print(json.dumps({"benchmark": "grpo_step", "prompt_tokens": length, "G": args.G, "device": args.device,
                      "ratios": ratios, "results": results}))


if __name__ == "__main__":
    main()
