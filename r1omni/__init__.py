"""r1omni: explainable emotion recognition from video and audio with the R1-Omni recipe."""

__version__ = "0.1.0"
