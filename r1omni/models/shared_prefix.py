"""LM passes where the G completions of a prompt share its prefix.

`generate` prefills each prompt once and samples G continuations that attend to one copy of
its KV cache (cascade attention, `cascade.py`), their own keys and values held in buffers
allocated once for the whole completion (a cache that grows by concatenation copies itself at
every token: 80% of decoding time at 1,000-token prompts);
`completion_logits` runs each prompt once with its G completions attending to the
cached keys and values. Gradients flow back through the cache into the prompt, so they equal
those of running every completion with its own copy of the prompt (``shared_prefix=False``).

Positions are explicit: 1-D ``[L]`` for ordinary LMs, ``[3, L]`` for multimodal rotary
embeddings (Qwen2.5-Omni). A completion continues from the prompt's largest position.
"""

from __future__ import annotations

import inspect
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from r1omni.models.cascade import NO_MASKS, CascadeCache, decoding_over


@dataclass
class Prompt:
    """One prompt ready for the LM: input embeddings ``[L, H]``, token ids ``[L]`` (-1 where a
    modality embedding stands) and positions ``[L]`` or ``[3, L]``."""

    embeds: torch.Tensor
    ids: torch.Tensor
    positions: torch.Tensor


@dataclass
class Completion:
    ids: list[int]  # sampled tokens, stop token excluded
    text: str
    stopped: bool  # ended on a stop token rather than the length limit


class SharedPrefixLM:
    """Mixin for a policy with `lm` (a Hugging Face causal LM taking `inputs_embeds`),
    `tokenizer` and `stop_ids`."""

    @property
    def device(self) -> torch.device:
        return self.lm.get_input_embeddings().weight.device

    @staticmethod
    def _collate(prompts: list[Prompt]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Left-padded embeddings ``[P, Lp, H]``, mask ``[P, Lp]``, positions ``[(3,) P, Lp]``."""
        length = max(len(p.embeds) for p in prompts)
        first = prompts[0]
        embeds = first.embeds.new_zeros(len(prompts), length, first.embeds.shape[-1])
        mask = torch.zeros(len(prompts), length, dtype=torch.long, device=embeds.device)
        lead = first.positions.shape[:-1]  # () or (3,)
        positions = torch.zeros(*lead, len(prompts), length, dtype=torch.long, device=embeds.device)
        for i, p in enumerate(prompts):
            start = length - len(p.embeds)
            embeds[i, start:] = p.embeds
            mask[i, start:] = 1
            positions[..., i, start:] = p.positions
        return embeds, mask, positions

    def _pad_completions(self, completions: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded completion ids ``[B, Lc]`` and mask ``[B, Lc]``."""
        length = max(1, max(len(c) for c in completions))
        ids = torch.full((len(completions), length), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros(len(completions), length, dtype=torch.long)
        for i, c in enumerate(completions):
            ids[i, : len(c)] = torch.tensor(c, dtype=torch.long)
            mask[i, : len(c)] = 1
        return ids.to(self.device), mask.to(self.device)

    @staticmethod
    def _continue(positions: torch.Tensor, group: int, steps: int) -> torch.Tensor:
        """Positions of `steps` tokens after each prompt, for its `group` completions:
        ``[B, steps]`` or ``[3, B, steps]``."""
        start = positions.amax(-1)  # [P] or [3, P]
        start = start.amax(0) if positions.dim() == 3 else start  # [P]
        nxt = start.repeat_interleave(group)[:, None] + 1 + torch.arange(steps, device=positions.device)
        return nxt.expand(3, -1, -1) if positions.dim() == 3 else nxt

    def _prefill(self, prompts: list[Prompt]):
        """Run the prompts once: next-token logits ``[P, V]``, the KV cache, mask, positions.
        Only the last position's logits are computed where the LM can skip the others (at a 150k
        vocabulary, the output layer over a 1,000-token prompt costs as much as the layers)."""
        embeds, mask, positions = self._collate(prompts)
        last_only = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(self.lm.forward).parameters else {}
        out = self.lm(inputs_embeds=embeds, attention_mask=mask, position_ids=positions, use_cache=True, **last_only)
        return out.logits[:, -1], out.cache, mask, positions

    def completion_logits(self, prompts: list[Prompt], completions: list[list[int]],
                          shared_prefix: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits that predict each completion token, ``[B, Lc, V]``, and the completion mask.

        `completions` holds G = B / P completions per prompt, grouped by prompt.
        """
        if len(completions) % len(prompts):
            raise ValueError(f"{len(completions)} completions do not split evenly over {len(prompts)} prompts")
        group = len(completions) // len(prompts)
        ids, comp_mask = self._pad_completions(completions)
        if self.lm.training and is_checkpointing(self.lm):
            shared_prefix = False  # checkpointed layers keep no KV cache in training: repeat the prefix
        if shared_prefix:
            last, cache, mask, positions = self._prefill(prompts)  # last: [P, V]
            cache.batch_repeat_interleave(group)
            mask = mask.repeat_interleave(group, 0)  # [B, Lp]
            out = self.lm(input_ids=ids, attention_mask=torch.cat([mask, comp_mask], 1),
                          position_ids=self._continue(positions, group, ids.shape[1]), cache=cache)
            return torch.cat([last.repeat_interleave(group, 0)[:, None], out.logits[:, :-1]], 1), comp_mask
        embeds, mask, positions = self._collate(prompts)
        full = torch.cat([embeds.repeat_interleave(group, 0), self.lm.get_input_embeddings()(ids)], 1)
        full_mask = torch.cat([mask.repeat_interleave(group, 0), comp_mask], 1)
        full_positions = torch.cat([positions.repeat_interleave(group, -2),
                                    self._continue(positions, group, ids.shape[1])], -1)
        out = self.lm(inputs_embeds=full, attention_mask=full_mask, position_ids=full_positions)
        return out.logits[:, mask.shape[1] - 1 : -1], comp_mask

    def completion_logprobs(self, prompts: list[Prompt], completions: list[list[int]],
                            shared_prefix: bool = True, temperature: float = 1.0
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token log-probabilities of the completions ``[B, Lc]`` (0 at padding) and mask."""
        logits, mask = self.completion_logits(prompts, completions, shared_prefix)
        ids, _ = self._pad_completions(completions)
        logprobs = torch.log_softmax(logits.float() / temperature, -1).gather(-1, ids[..., None])[..., 0]
        return logprobs * mask, mask

    @torch.no_grad()
    def generate(self, prompts: list[Prompt], num_generations: int = 1, temperature: float = 1.0,
                 top_p: float = 1.0, max_new_tokens: int = 128, stop: list[int] | None = None,
                 seed: int | list[int] | None = None, cascade: bool = True) -> list[list[Completion]]:
        """Sample `num_generations` completions per prompt from one prefill per prompt.

        Temperature 0 decodes greedily. Decoding attends to one copy of each prompt's cache
        (`cascade`, see `r1omni.models.cascade`); ``cascade=False`` repeats it per completion.
        `seed` may be one seed per prompt: a prompt then samples the same completions whatever
        batch it is generated in (several processes, or one).
        Returns one list of completions per prompt.
        """
        seeds = seed if isinstance(seed, (list, tuple)) else [seed]
        generators = []
        for value in seeds:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(value) if value is not None else generator.seed()
            generators.append(generator)
        if len(generators) not in (1, len(prompts)):
            raise ValueError(f"{len(generators)} seeds for {len(prompts)} prompts")
        stops = torch.tensor(stop if stop is not None else self.stop_ids, device=self.device)
        logits, prefix, mask, positions = self._prefill(prompts)
        logits = logits.repeat_interleave(num_generations, 0)  # [B, V]
        steps = self._continue(positions, num_generations, max_new_tokens)  # [(3,) B, max_new_tokens]
        rows = len(logits)
        done = torch.zeros(rows, dtype=torch.bool, device=self.device)
        stopped = torch.zeros_like(done)
        tokens = []
        with _decoding_steps(self.lm, prefix, mask, num_generations, max_new_tokens, cascade) as feed:
            for step in range(max_new_tokens):
                if len(generators) == 1:
                    token = _sample(logits, temperature, top_p, generators[0])  # [B]
                else:  # each prompt's rows from its own generator
                    token = torch.cat([_sample(part, temperature, top_p, g)
                                       for part, g in zip(logits.split(num_generations), generators)])
                token = torch.where(done, self.tokenizer.pad_token_id, token)
                hit = torch.isin(token, stops) & ~done
                stopped |= hit
                tokens.append(torch.where(hit, -1, token))
                done |= hit
                if done.all() or step + 1 == max_new_tokens:
                    break
                logits = feed(token, steps[..., step : step + 1])
        table = torch.stack(tokens, 1).tolist() if tokens else [[] for _ in range(rows)]
        results = []
        for row, sequence in enumerate(table):
            ids = sequence[: sequence.index(-1)] if -1 in sequence else sequence
            results.append(Completion(ids, self.tokenizer.decode(ids, skip_special_tokens=False),
                                      bool(stopped[row])))
        return [results[i : i + num_generations] for i in range(0, rows, num_generations)]


@contextmanager
def _decoding_steps(lm, prefix, mask: torch.Tensor, group: int, max_new: int, cascade: bool = True):
    """After a prefill (its cache `prefix` and padding `mask` ``[P, Lp]``), a function that feeds
    one token per row ``[B]`` at positions ``[(3,) B, 1]`` and returns the next logits ``[B, V]``,
    B = P * group. With `cascade`, attention reads each prompt's prefix once for its group;
    otherwise the prefix is repeated `group` times into buffers for the whole completion."""
    if cascade and not any(getattr(m, "sliding_window", None) for m in lm.modules()):
        cache = CascadeCache(prefix, mask, group, max_new)
        with decoding_over(lm):
            yield lambda token, position: lm(input_ids=token[:, None], attention_mask=NO_MASKS, position_ids=position,
                                             cache=cache, cascade=cache).logits[:, -1]
        return
    length = mask.shape[1]
    cache = _preallocated(prefix, group, length + max_new)
    # [B, Lp + max_new]: the prompt's padding mask, then each token as it is fed
    full = torch.cat([mask.repeat_interleave(group, 0), mask.new_zeros(len(mask) * group, max_new)], 1)
    fed = 0

    def feed(token: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        nonlocal fed
        full[:, length + fed] = 1
        fed += 1
        return lm(input_ids=token[:, None], attention_mask=full, position_ids=position, cache=cache).logits[:, -1]

    yield feed


def _preallocated(cache, group: int, length: int):
    """The prefill's KV cache with each prompt's rows repeated `group` times, in buffers of
    `length` positions that decoding fills in place."""
    from transformers.cache_utils import Cache, StaticLayer

    static = Cache(layers=[StaticLayer(max_cache_len=length) for _ in cache.layers])
    for target, source in zip(static.layers, cache.layers):  # keys, values: [P, heads, Lp, d]
        target.update(source.keys.repeat_interleave(group, 0), source.values.repeat_interleave(group, 0))
    return static


def is_checkpointing(lm) -> bool:
    """Whether activation (gradient) checkpointing is on; transformers 5 renamed the property."""
    if hasattr(type(lm), "is_activation_checkpointing"):
        return bool(lm.is_activation_checkpointing)
    return bool(getattr(lm, "is_gradient_checkpointing", False))


def _sample(logits: torch.Tensor, temperature: float, top_p: float, generator: torch.Generator) -> torch.Tensor:
    """One token per row ``[B]`` from logits ``[B, V]`` (greedy at temperature 0), by inverting each
    row's cumulative distribution at one uniform draw (`torch.multinomial` draws an exponential
    per vocabulary entry: most of a decoding step's sampling time at a 150k vocabulary)."""
    if temperature <= 0:
        return logits.argmax(-1)
    probs = torch.softmax(logits.float() / temperature, -1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(-1, descending=True)
        keep = sorted_probs.cumsum(-1) - sorted_probs < top_p  # always keeps the top token
        probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs * keep)
    cumulative = probs.cumsum(-1)  # [B, V]
    draw = torch.rand(len(probs), 1, generator=generator, device=probs.device) * cumulative[:, -1:]
    # the first entry whose cumulative probability exceeds the draw (never one of probability 0)
    return torch.searchsorted(cumulative, draw, right=True)[:, 0].clamp_max(probs.shape[-1] - 1)
