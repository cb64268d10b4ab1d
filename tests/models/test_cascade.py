"""Cascade attention: a group's queries over one copy of their prompt's prefix plus their own
suffix, merged by log-sum-exp, equal attention over the whole repeated sequence."""

import pytest
import torch

from r1omni.models.cascade import CascadeCache, cascade_attention


class Layer(torch.nn.Module):  # what cascade_attention reads off the calling attention module
    layer_idx = 0
    sliding_window = None


def reference(query, prefix_keys, prefix_values, prefix_mask, keys, values, group, scaling):
    """Plain softmax attention over [the prompt's prefix repeated for each row ; the row's suffix],
    causal among the last T suffix tokens."""
    rows, heads, steps, _ = query.shape
    rep = heads // prefix_keys.shape[1]
    full_keys = torch.cat([prefix_keys.repeat_interleave(group, 0), keys], 2).repeat_interleave(rep, 1)
    full_values = torch.cat([prefix_values.repeat_interleave(group, 0), values], 2).repeat_interleave(rep, 1)
    length, suffix = full_keys.shape[2], keys.shape[2]
    visible = torch.ones(rows, steps, length, dtype=torch.bool)
    visible[:, :, : prefix_keys.shape[2]] = prefix_mask.repeat_interleave(group, 0)[:, None]
    for t in range(steps):
        visible[:, t, length - suffix + (suffix - steps) + t + 1 :] = False
    scores = query @ full_keys.transpose(-1, -2) * scaling
    scores = scores.masked_fill(~visible[:, None], float("-inf"))
    return (torch.softmax(scores, -1) @ full_values).transpose(1, 2)  # [B, T, H, d]


@pytest.mark.parametrize("padded", [True, False])
@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("kv_heads, heads", [(2, 2), (2, 6)])
def test_cascade_attention_equals_attention_over_the_repeated_sequence(steps, kv_heads, heads, padded):
    generator = torch.Generator().manual_seed(0)
    prompts, group, prefix, suffix, dim = 3, 4, 11, 5, 8
    rows = prompts * group
    randn = lambda *shape: torch.randn(*shape, generator=generator, dtype=torch.float64)  # noqa: E731
    prefix_keys, prefix_values = randn(prompts, kv_heads, prefix, dim), randn(prompts, kv_heads, prefix, dim)
    prefix_mask = torch.ones(prompts, prefix, dtype=torch.long)
    if padded:
        prefix_mask[1, :4] = 0  # left padding of shorter prompts
        prefix_mask[2, :9] = 0

    class Prefill:  # a prefilled cache's layers
        layers = [type("L", (), {"keys": prefix_keys, "values": prefix_values})()]

    cache = CascadeCache(Prefill, prefix_mask, group, max_new=suffix + 2)
    keys, values = cache.layers[0].update(randn(rows, kv_heads, suffix, dim), randn(rows, kv_heads, suffix, dim))
    query = randn(rows, heads, steps, dim)
    got, _ = cascade_attention(Layer(), query, keys, values, None, scaling=dim**-0.5, cascade=cache)
    expected = reference(query, prefix_keys, prefix_values, prefix_mask, keys, values, group, dim**-0.5)
    assert got.shape == (rows, steps, heads, dim)
    assert torch.allclose(got, expected, atol=1e-12)


def test_the_cache_keeps_one_copy_of_the_prefix_and_refuses_overflow():
    keys = torch.zeros(2, 1, 7, 4)

    class Prefill:
        layers = [type("L", (), {"keys": keys, "values": keys})()]

    cache = CascadeCache(Prefill, torch.ones(2, 7), group=8, max_new=2)
    layer = cache.layers[0]
    assert layer.prefix_keys.data_ptr() == keys.data_ptr() and layer.keys.shape == (16, 1, 2, 4)
    layer.update(torch.ones(16, 1, 2, 4), torch.ones(16, 1, 2, 4))
    assert layer.get_seq_length() == 9
    with pytest.raises(ValueError, match="holds 2 new tokens"):
        layer.update(torch.ones(16, 1, 1, 4), torch.ones(16, 1, 1, 4))
