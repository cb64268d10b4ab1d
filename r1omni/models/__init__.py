"""Omni policy models: the `OmniPolicy` interface (`base`), its backends, towers, the feature cache
and the preset registry."""

from r1omni.models.base import (
    BACKENDS,
    ClipMedia,
    LoadingOption,
    OmniPolicy,
    PolicyConfig,
    loading_options,
    register_backend,
)
from r1omni.models.cache import FeatureCache
from r1omni.models.composed import ComposedPolicy, composed, nano
from r1omni.models.humanomni import HumanOmniPolicy
from r1omni.models.loading import export_released, load_policy
from r1omni.models.presets import PRESETS, R1OMNI_05B, build_preset, r1omni_05b
from r1omni.models.qwen_omni import QwenOmniPolicy, from_thinker
from r1omni.models.shared_prefix import Completion, Prompt

__all__ = ["BACKENDS", "PRESETS", "R1OMNI_05B", "ClipMedia", "Completion", "ComposedPolicy", "FeatureCache",
           "HumanOmniPolicy", "LoadingOption", "OmniPolicy", "PolicyConfig", "Prompt", "QwenOmniPolicy",
           "build_preset", "composed", "export_released", "from_thinker", "load_policy", "loading_options", "nano",
           "r1omni_05b", "register_backend"]
