"""Rollout: shared-prefix generation vs ``generate(num_return_sequences=G)``, same model and prompts.

r1omni prefills each prompt once and decodes G continuations whose attention reads one copy of
the prompt's keys and values (cascade attention) and their own, in buffers allocated once;
Hugging Face's `generate` (as R1-Omni calls it) expands every prompt G times before the prefill
and grows its cache by concatenation. Two more rows separate the gains: `generate` with
``cache_implementation="static"`` (preallocated buffers alone) and r1omni with the prefix
repeated G times in its buffers (``cascade=False``: the shared prefill without cascade
decoding). Prompts of ~1,000 tokens, 128 new tokens (no early stop, so all produce the same
number of tokens), G = 8; the methods take turns, repeat by repeat. Run:
``python benchmarks/rollout.py [--shapes toy|r1omni-0.5b] [--prompts 2] [--repeats 5]``.
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

sys.path.insert(0, str(Path(__file__).parent))
from omni_setup import SHAPES, PeakRSS, build_model, pick_shapes, sync, workdir  # noqa: E402

from r1omni.models import OmniPolicy  # noqa: E402
from r1omni.models.shared_prefix import Prompt  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", choices=list(SHAPES), default="toy", help="the LM's sizes (see grpo_step.py)")
    parser.add_argument("--width", type=int, help="toy shapes: width (default 256)")
    parser.add_argument("--layers", type=int, help="toy shapes: layers (default 4)")
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--G", type=int, default=8)
    parser.add_argument("--prompt-tokens", type=int, default=1000)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 weights")
    args = parser.parse_args()

    shapes = pick_shapes(args.shapes, args.width, args.layers)
    policy = OmniPolicy.from_pretrained(build_model(workdir() / "model", shapes), device=args.device,
                                        dtype="bfloat16" if args.bf16 else "float32").eval()
    generator = torch.Generator().manual_seed(0)
    vocab = len(policy.tokenizer)
    ids = torch.randint(10, vocab, (args.prompts, args.prompt_tokens), generator=generator).to(policy.device)  # [P, L]
    embed = policy.lm.get_input_embeddings()
    prompts = [Prompt(embed(row).detach(), row, torch.arange(len(row), device=policy.device)) for row in ids]

    def shared_prefix(cascade: bool = True):
        return policy.generate(prompts, args.G, temperature=1.0, max_new_tokens=args.new_tokens, stop=[], seed=0,
                               cascade=cascade)

    @torch.no_grad()
    def expanded(**options):
        return policy.lm.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0,
                                  num_return_sequences=args.G, max_new_tokens=args.new_tokens,
                                  min_new_tokens=args.new_tokens, pad_token_id=policy.tokenizer.pad_token_id,
                                  **options)

    methods = {"num_return_sequences": expanded,
               "num_return_sequences_static": lambda: expanded(cache_implementation="static"),
               "shared_prefix_repeated": lambda: shared_prefix(cascade=False),
               "shared_prefix": shared_prefix}
    for name, run in methods.items():  # warm-up, and every method makes the full completions
        made = run()
        if name.startswith("shared_prefix"):
            assert all(len(c.ids) == args.new_tokens for group in made for c in group)
        else:
            assert made.shape == (args.prompts * args.G, args.prompt_tokens + args.new_tokens)
    times = {name: [] for name in methods}
    memory = dict.fromkeys(methods, 0.0)
    for _ in range(args.repeats):
        for name, run in methods.items():
            with PeakRSS() as peak:
                sync(args.device)
                started = time.perf_counter()
                run()
                sync(args.device)
                times[name].append(time.perf_counter() - started)
            memory[name] = max(memory[name], peak.megabytes)
    results = {name: {"s": round(statistics.median(t), 3), "min_s": round(min(t), 3), "max_s": round(max(t), 3),
                      "peak_mb": round(memory[name])} for name, t in times.items()}
    fast = results["shared_prefix"]["s"]
    ratio = results["num_return_sequences"]["s"] / fast
    static_ratio = results["num_return_sequences_static"]["s"] / fast
    cascade_ratio = results["shared_prefix_repeated"]["s"] / fast
    load = os.getloadavg()
    print(f"rollout ({args.shapes} shapes): {args.prompts} prompts x G {args.G}, {args.prompt_tokens}-token prompts, "
          f"{args.new_tokens} new tokens, {'bfloat16' if args.bf16 else 'float32'} on {args.device}, median and "
          f"range of {args.repeats} interleaved repeats; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"{'method':<30}{'seconds':>10}{'range':>16}{'peak MB':>10}")
    for name, r in results.items():
        print(f"{name:<30}{r['s']:>10.2f}{r['min_s']:>8.2f}-{r['max_s']:<7.2f}{r['peak_mb']:>10}")
    print(f"shared prefix is {ratio:.2f}x faster than generate(num_return_sequences), {static_ratio:.2f}x faster than "
          f"it with a static cache; cascade decoding alone {cascade_ratio:.2f}x")
    print(json.dumps({"benchmark": "rollout", "shapes": args.shapes, "device": args.device, "ratio": round(ratio, 2),
                      "ratio_vs_static": round(static_ratio, 2), "cascade_ratio": round(cascade_ratio, 2),
                      "load_average": load, "results": results}))


if __name__ == "__main__":
    main()
