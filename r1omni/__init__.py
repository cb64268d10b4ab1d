"""r1omni: explainable emotion recognition from video and audio with the R1-Omni recipe."""

__version__ = "0.1.0"


def load_model(directory, **settings):
    """A saved model ready to predict: ``load_model(DIR).predict("clip.mp4")`` (see r1omni.predict)."""
    from r1omni.predict import load_model as load

    return load(directory, **settings)
