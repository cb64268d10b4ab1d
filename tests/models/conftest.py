"""Tiny policies: a nano policy and the registered backends' tiny variants."""

import pytest
import torch

from r1omni.models import ComposedPolicy, QwenOmniPolicy, nano
from r1omni.models.tokenizer import TINY_CORPUS


@pytest.fixture(scope="session")
def nano_policy():
    torch.manual_seed(0)
    lm = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2)
    return nano(TINY_CORPUS, vocab_size=400, lm=lm, vision={"channels": 8, "width": 32}, audio={"width": 32},
                projector_hidden=64).eval()


def tiny_composed():
    """A Qwen2 LM with frozen SigLIP and Whisper towers at toy widths."""
    torch.manual_seed(0)
    return ComposedPolicy.tiny_variants()["hf-towers"]().eval()


@pytest.fixture(scope="session")
def composed_policy():
    return tiny_composed()


@pytest.fixture
def make_composed():
    """A fresh tiny composed policy, for tests that change it."""
    return tiny_composed


def tiny_qwen(frozen=None):
    """Qwen2.5-Omni's thinker at toy widths; `frozen` replaces the parts it freezes."""
    torch.manual_seed(0)
    policy = QwenOmniPolicy.tiny_variants()["thinker"]()
    if frozen is not None:
        policy.config.frozen = list(frozen)
        for encoder in policy.encoders().values():
            encoder.requires_grad_(True)
        for part in frozen:
            policy.encoders()[part].requires_grad_(False)
    return policy.eval()


@pytest.fixture(scope="session")
def qwen_policy():
    return tiny_qwen()


@pytest.fixture
def make_qwen():
    return tiny_qwen
