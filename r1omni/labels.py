"""Emotion label vocabularies of the benchmark datasets and the canonical names r1omni uses.

Every label inside r1omni is a canonical lowercase name (``happy``, ``fear``, ``contempt`` …).
`canonical` maps a dataset's own spelling (``Fearful``, ``happiness``, ``contemptuous``) onto it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from r1omni.errors import LabelError

# Dataset vocabularies in each dataset's official order (see REFERENCE.md).
VOCABULARIES: dict[str, tuple[str, ...]] = {
    "dfew": ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"),
    "mafw": (
        "happy", "sad", "neutral", "angry", "surprise", "disgust", "fear",
        "contempt", "anxiety", "helplessness", "disappointment",
    ),
    "ravdess": ("neutral", "calm", "happy", "sad", "angry", "fear", "disgust", "surprise"),
    "cremad": ("angry", "disgust", "fear", "happy", "neutral", "sad"),
    "emodb": ("angry", "boredom", "disgust", "fear", "happy", "sad", "neutral"),
    "mer2023": ("neutral", "angry", "happy", "sad", "worried", "surprise"),
    "fer2013": ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"),
    "ckplus": ("angry", "contempt", "disgust", "fear", "happy", "sad", "surprise"),
}

ALL_LABELS: tuple[str, ...] = tuple(
    dict.fromkeys(label for vocab in VOCABULARIES.values() for label in vocab)
)

# Other spellings of the canonical names: adjective/noun forms and the datasets' own words.
SYNONYMS: dict[str, str] = {
    "happiness": "happy", "joy": "happy", "joyful": "happy", "glad": "happy",
    "sadness": "sad", "unhappy": "sad", "sorrow": "sad",
    "neutrality": "neutral",
    "anger": "angry", "angered": "angry", "furious": "angry",
    "surprised": "surprise", "surprising": "surprise",
    "disgusted": "disgust", "disgusting": "disgust",
    "fearful": "fear", "afraid": "fear", "scared": "fear", "frightened": "fear",
    "contemptuous": "contempt",
    "anxious": "anxiety",
    "helpless": "helplessness",
    "disappointed": "disappointment",
    "calmness": "calm",
    "bored": "boredom",
    "worry": "worried",
}

# Words are runs of any letters, so that a look-alike letter (Cyrillic "о" in "boredоm") makes a
# different word rather than splitting off a real one ("bored").
_WORD = re.compile(r"[^\W\d_]+")


def vocabulary(dataset: str) -> tuple[str, ...]:
    """The canonical labels of `dataset` (case-insensitive name), in the dataset's order. Names
    joined by ``+`` (``fer2013+emodb``) give the union of their vocabularies, first name's order
    first; joined by ``&`` (``emodb&ravdess``), the labels all of them share, in the first's order."""
    joiner = "&" if "&" in dataset else "+"
    if "&" in dataset and "+" in dataset:
        raise LabelError(f"label set {dataset!r}: join names by + (all their labels) or by & (the labels "
                         "they share), not both")
    vocabularies = []
    for name in dataset.split(joiner):
        key = name.strip().lower().replace("-", "").replace("_", "")
        if key not in VOCABULARIES:
            raise LabelError(f"unknown dataset {name!r}; known vocabularies: {', '.join(VOCABULARIES)} "
                             "(or several joined by + or by &)")
        vocabularies.append(VOCABULARIES[key])
    if joiner == "&":
        return tuple(label for label in vocabularies[0] if all(label in v for v in vocabularies[1:]))
    return tuple(dict.fromkeys(label for v in vocabularies for label in v))


def lookup(word: str) -> str | None:
    """The canonical label for one word or phrase, or None if it names no known emotion."""
    key = word.strip().strip(".,;:!?\"'").lower()
    if key in ALL_LABELS:
        return key
    return SYNONYMS.get(key)


def canonical(label: str, vocab: Iterable[str] | None = None) -> str:
    """Map `label` to its canonical name; raise `LabelError` if it is not in `vocab`.

    `vocab` defaults to every label r1omni knows. The error lists the vocabulary so the user
    sees what was expected.
    """
    allowed = tuple(vocab) if vocab is not None else ALL_LABELS
    name = lookup(label) if isinstance(label, str) else None
    if name is None or name not in allowed:
        raise LabelError(f"unknown label {label!r}; expected one of: {', '.join(allowed)}")
    return name


def emotions_named(text: str) -> list[str]:
    """The distinct canonical labels named by the words of `text`, in order of appearance."""
    found = (lookup(w) for w in _WORD.findall(text.lower()))
    return list(dict.fromkeys(name for name in found if name is not None))
