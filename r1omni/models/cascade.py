"""Decoding attention over one copy of each prompt's keys and values (cascade attention).

When G completions of a prompt are decoded together, their queries attend to the same prompt
prefix. A cache that repeats the prefix G times makes every decoding step read G copies of it.
Here the prefix is kept once per prompt and attention is split in two, as cascade /
shared-prefix kernels (FlashInfer's, Hydragen) do:

- the G rows' queries of a prompt attend to its prefix in one product (the prefix is read once);
- each row's query attends to its own completion so far (the suffix);
- the two partial softmaxes merge exactly through their log-sum-exps:
  ``out = out_p * exp(lse_p - lse) + out_s * exp(lse_s - lse)``, ``lse = logaddexp(lse_p, lse_s)``.

The LM's own attention modules are used unchanged: `CascadeCache.update` stores the new keys and
values in per-row suffix buffers, and `cascade_attention` (registered with transformers'
attention interface, switched on by `decoding_over`) combines them with the shared prefix.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
from transformers import AttentionInterface
from transformers.cache_utils import Cache, CacheLayerMixin

ATTENTION_NAME = "r1omni_cascade"
# Handed to the LM as its attention masks: the masks are built here, from the prefix's padding.
NO_MASKS = {"full_attention": None, "sliding_attention": None}


class CascadeLayer(CacheLayerMixin):
    """One layer's prefix keys/values once per prompt ``[P, kv, Lp, d]`` and each row's
    completion keys/values ``[B, kv, max_new, d]``, B = P * G, filled in place."""

    def __init__(self, keys: torch.Tensor, values: torch.Tensor, group: int, max_new: int):
        super().__init__()
        self.prefix_keys, self.prefix_values = keys, values
        rows, heads, _, dim = keys.shape[0] * group, keys.shape[1], keys.shape[2], keys.shape[3]
        self.keys = keys.new_zeros(rows, heads, max_new, dim)
        self.values = values.new_zeros(rows, heads, max_new, dim)
        self.filled = 0
        self.is_initialized = True

    def lazy_initialization(self, key_states, value_states) -> None:  # built whole in __init__
        pass

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        """Append this step's keys/values ``[B, kv, T, d]``; returns the suffix so far."""
        steps = key_states.shape[2]
        if self.filled + steps > self.keys.shape[2]:
            raise ValueError(f"cascade cache holds {self.keys.shape[2]} new tokens; asked for more")
        self.keys[:, :, self.filled : self.filled + steps] = key_states
        self.values[:, :, self.filled : self.filled + steps] = value_states
        self.filled += steps
        return self.keys[:, :, : self.filled], self.values[:, :, : self.filled]

    def get_seq_length(self) -> int:
        return self.prefix_keys.shape[2] + self.filled

    def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
        return self.get_seq_length() + query_length, 0

    def get_max_length(self) -> int:
        return self.prefix_keys.shape[2] + self.keys.shape[2]


class CascadeCache(Cache):
    """A prefilled cache's keys and values kept once per prompt, with room for `max_new`
    completion tokens in each of its `group` rows; `prefix_mask` ``[P, Lp]`` marks real
    (unpadded) prefix positions."""

    def __init__(self, prefill: Cache, prefix_mask: torch.Tensor, group: int, max_new: int):
        super().__init__(layers=[CascadeLayer(layer.keys, layer.values, group, max_new) for layer in prefill.layers])
        self.group = group
        # added to prefix scores: -inf at left padding; None when no prompt is padded
        real = prefix_mask.bool()[:, None, None, :]  # [P, 1, 1, Lp]
        self.prefix_bias = None if bool(real.all()) else \
            torch.zeros(real.shape, device=real.device).masked_fill(~real, float("-inf"))


def cascade_attention(module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_mask,
                      scaling: float, dropout: float = 0.0, cascade: CascadeCache | None = None, **kwargs):
    """Attention of new tokens' queries ``[B, H, T, d]`` over their prompt's shared prefix and
    their own completion so far (`key`/`value`, ``[B, kv, S, d]``, the last T of them new);
    returns ``[B, T, H, d]`` as transformers' attention functions do, and no weights."""
    if cascade is None:
        raise ValueError("cascade attention needs the CascadeCache passed as cascade=")
    if getattr(module, "sliding_window", None):
        raise ValueError("cascade attention does not support sliding-window layers")
    layer = cascade.layers[module.layer_idx]
    prefix_keys, prefix_values = layer.prefix_keys, layer.prefix_values  # [P, kv, Lp, d]
    rows, heads, steps, dim = query.shape
    prompts, kv = prefix_keys.shape[:2]
    group, rep = rows // prompts, heads // kv  # query head h reads key/value head h // rep
    exact = torch.promote_types(query.dtype, torch.float32)  # softmax statistics in at least float32

    # Prefix: every row of a prompt in one product. [P, kv, G * rep * T, d]
    q = query.reshape(prompts, group, kv, rep, steps, dim).transpose(1, 2).reshape(prompts, kv, -1, dim)
    scores = torch.matmul(q, prefix_keys.transpose(-1, -2)).to(exact) * scaling  # [P, kv, G*rep*T, Lp]
    if cascade.prefix_bias is not None:
        scores = scores + cascade.prefix_bias
    out_prefix, lse_prefix = _partial_softmax(scores, prefix_values)
    # back to rows: [B, kv, rep * T, ...]
    out_prefix = out_prefix.reshape(prompts, kv, group, rep * steps, dim).transpose(1, 2).reshape(rows, kv, -1, dim)
    lse_prefix = lse_prefix.reshape(prompts, kv, group, rep * steps, 1).transpose(1, 2).reshape(rows, kv, -1, 1)

    # Suffix: each row over its own completion tokens, causal among the T new ones.
    q = query.reshape(rows, kv, rep * steps, dim)
    scores = torch.matmul(q, key.transpose(-1, -2)).to(exact) * scaling  # [B, kv, rep*T, S]
    if steps > 1:
        length = key.shape[2]
        visible = torch.arange(length, device=query.device)[None] <= \
            (length - steps + torch.arange(steps, device=query.device))[:, None]  # [T, S]
        scores = scores.masked_fill(~visible.repeat(rep, 1)[None, None], float("-inf"))
    out_suffix, lse_suffix = _partial_softmax(scores, value)

    lse = torch.logaddexp(lse_prefix, lse_suffix)
    out = out_prefix * torch.exp(lse_prefix - lse).to(value.dtype) + \
        out_suffix * torch.exp(lse_suffix - lse).to(value.dtype)  # [B, kv, rep*T, d]
    return out.reshape(rows, heads, steps, dim).transpose(1, 2).contiguous(), None


def _partial_softmax(scores: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Softmax attention of `scores` ``[..., Lq, Lk]`` over `values` ``[..., Lk, d]``, and the
    log-sum-exp of the scores ``[..., Lq, 1]`` that lets two such parts merge exactly."""
    top = scores.amax(-1, keepdim=True)
    weights = torch.exp(scores - top)
    total = weights.sum(-1, keepdim=True)
    out = torch.matmul(weights.to(values.dtype), values) / total.to(values.dtype)
    return out, top + total.log()


AttentionInterface.register(ATTENTION_NAME, cascade_attention)


@contextmanager
def decoding_over(lm):
    """Within the block, the LM's attention layers use `cascade_attention`; pass the cache as
    both ``cache=`` and ``cascade=``, and `NO_MASKS` as the attention mask."""
    configs = {id(m.config): m.config for m in lm.modules()
               if hasattr(m, "layer_idx") and hasattr(m, "config") and hasattr(m, "q_proj")}
    before = {key: config._attn_implementation for key, config in configs.items()}
    try:
        for config in configs.values():
            config._attn_implementation_internal = ATTENTION_NAME  # this config only, not its sub-configs
        yield
    finally:
        for key, config in configs.items():
            config._attn_implementation_internal = before[key]
