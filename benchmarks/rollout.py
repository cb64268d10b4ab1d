"""Rollout: shared-prefix generation vs ``generate(num_return_sequences=G)``, same model and prompts.

r1omni prefills each prompt once and samples G continuations from copies of its KV cache held in
buffers allocated once; Hugging Face's `generate` (as R1-Omni calls it) expands every prompt G
times before the prefill and grows its cache by concatenation. A third row, `generate` with
``cache_implementation="static"``, separates the two gains: preallocated buffers alone, without
the shared prefill. Prompts of ~1,000 tokens, 128 new tokens (no early stop, so all produce the
same number of tokens), G = 8. Run: ``python benchmarks/rollout.py [--prompts 2] [--repeats 3]``.
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
from omni_setup import PeakRSS, build_model, workdir  # noqa: E402

from r1omni.models import OmniPolicy  # noqa: E402
from r1omni.models.shared_prefix import Prompt  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--G", type=int, default=8)
    parser.add_argument("--prompt-tokens", type=int, default=1000)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    policy = OmniPolicy.from_pretrained(build_model(workdir() / "model", args.width, args.layers), device="cpu").eval()
    generator = torch.Generator().manual_seed(0)
    vocab = len(policy.tokenizer)
    ids = torch.randint(10, vocab, (args.prompts, args.prompt_tokens), generator=generator)  # [P, L]
    embed = policy.lm.get_input_embeddings()
    prompts = [Prompt(embed(row).detach(), row, torch.arange(len(row))) for row in ids]

    def shared_prefix():
        return policy.generate(prompts, args.G, temperature=1.0, max_new_tokens=args.new_tokens, stop=[], seed=0)

    @torch.no_grad()
    def expanded(**options):
        return policy.lm.generate(ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.0,
                                  num_return_sequences=args.G, max_new_tokens=args.new_tokens,
                                  min_new_tokens=args.new_tokens, pad_token_id=policy.tokenizer.pad_token_id,
                                  **options)

    def expanded_static():
        return expanded(cache_implementation="static")

    made = shared_prefix()
    assert all(len(c.ids) == args.new_tokens for group in made for c in group)
    for run in (expanded, expanded_static):
        assert run().shape == (args.prompts * args.G, args.prompt_tokens + args.new_tokens)
    results = {}
    for name, run in (("num_return_sequences", expanded), ("num_return_sequences_static", expanded_static),
                      ("shared_prefix", shared_prefix)):
        times = []
        with PeakRSS() as memory:
            for _ in range(args.repeats):
                started = time.perf_counter()
                run()
                times.append(time.perf_counter() - started)
        results[name] = {"s": statistics.median(times), "peak_mb": round(memory.megabytes)}
    ratio = results["num_return_sequences"]["s"] / results["shared_prefix"]["s"]
    static_ratio = results["num_return_sequences_static"]["s"] / results["shared_prefix"]["s"]
    print(f"rollout: {args.prompts} prompts x G {args.G}, {args.prompt_tokens}-token prompts, {args.new_tokens} new "
          f"tokens, width {args.width}, {args.layers} layers, median of {args.repeats}")
    print(f"{'method':<30}{'seconds':>10}{'peak MB':>10}")
    for name, r in results.items():
        print(f"{name:<30}{r['s']:>10.2f}{r['peak_mb']:>10}")
    print(f"shared prefix is {ratio:.2f}x faster than generate(num_return_sequences), "
          f"{static_ratio:.2f}x faster than it with a static cache")
    print(json.dumps({"benchmark": "rollout", "ratio": round(ratio, 2), "ratio_vs_static": round(static_ratio, 2),
                      "results": results}))


if __name__ == "__main__":
    main()
