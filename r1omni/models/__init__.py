"""Omni policy models: the `OmniPolicy` interface, its backends, towers and the feature cache."""

from r1omni.models.cache import FeatureCache
from r1omni.models.inputs import load_clip
from r1omni.models.policy import ClipMedia, OmniPolicy, PolicyConfig
from r1omni.models.presets import R1OMNI_05B, composed, nano, r1omni_05b
from r1omni.models.qwen_omni import QwenOmniPolicy, from_thinker
from r1omni.models.shared_prefix import Completion, Prompt
from r1omni.models.towers import ConfigError

__all__ = ["R1OMNI_05B", "ClipMedia", "Completion", "ConfigError", "FeatureCache", "OmniPolicy", "PolicyConfig",
           "Prompt", "QwenOmniPolicy", "composed", "from_thinker", "load_clip", "nano", "r1omni_05b"]
