"""Omni policy models: the `OmniPolicy` interface, its backends, towers and the feature cache."""

from r1omni.models.cache import FeatureCache
from r1omni.models.inputs import load_clip
from r1omni.models.policy import ClipMedia, Completion, OmniPolicy, PolicyConfig, Prompt
from r1omni.models.presets import R1OMNI_05B, composed, nano
from r1omni.models.towers import ConfigError

__all__ = ["R1OMNI_05B", "ClipMedia", "Completion", "ConfigError", "FeatureCache", "OmniPolicy", "PolicyConfig",
           "Prompt", "composed", "load_clip", "nano"]
