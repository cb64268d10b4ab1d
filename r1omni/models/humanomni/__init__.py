"""The released HumanOmni-0.5B / R1-Omni-0.5B models: the `humanomni` backend (`policy`), its
video projector (`projector`) and the official folder layout (`official`)."""

from r1omni.models.humanomni.official import export_official, is_official, read_official
from r1omni.models.humanomni.policy import HumanOmniPolicy

__all__ = ["HumanOmniPolicy", "export_official", "is_official", "read_official"]
