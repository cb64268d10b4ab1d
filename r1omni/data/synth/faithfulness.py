"""Cue faithfulness: do the cues a reasoning text claims match the clip's true cues?

Claims are found with the world's concept patterns (phrases and synonyms); a negated mention
("no smile", "without raised brows") is not a claim. Precision is the share of claimed cues
that are true (low precision = invented cues), recall the share of true cues mentioned.
"""

from __future__ import annotations

import re

from r1omni.data.synth.cues import CONCEPT_PATTERNS, face_concepts, voice_concepts

_COMPILED = {concept: re.compile(pattern, re.IGNORECASE) for concept, pattern in CONCEPT_PATTERNS.items()}
# A negation word up to three words before a mention, within the same clause.
_NEGATION = re.compile(r"\b(no|not|without|never|neither|nor|lacks?|lacking|absence of|isn't|aren't|doesn't)"
                       r"\b([^\w;:.,!?]+\w+){0,3}[^\w;:.,!?]*$", re.IGNORECASE)


def claimed_cues(text: str) -> set[str]:
    """The cue concepts `text` asserts, most specific pattern first, negations dropped."""
    claimed = set()
    remaining = text
    for concept, pattern in _COMPILED.items():
        for match in list(pattern.finditer(remaining)):
            if not _NEGATION.search(remaining[max(0, match.start() - 40) : match.start()]):
                claimed.add(concept)
        # Blank the mention with a word-like filler, so later negation scopes still count it.
        remaining = pattern.sub(lambda m: "_" * len(m.group(0)), remaining)
    return claimed


def true_cues(cues: dict) -> set[str]:
    """The describable cues of a clip from its recorded ``cues`` (AU apexes and prosody)."""
    found = set()
    if cues.get("aus"):
        found.update(face_concepts(cues["aus"]))
    if cues.get("prosody"):
        found.update(voice_concepts(cues["prosody"]))
    return found


def cue_faithfulness(think_text: str, cues: dict) -> dict:
    """Precision, recall and F1 of the claimed cues against the true ones.

    Precision is None when the text claims no cue at all. Also returns the cue sets
    (`claimed`, `true`) and their differences (`invented`, `missed`).
    """
    claimed, true = claimed_cues(think_text or ""), true_cues(cues)
    right = claimed & true
    precision = len(right) / len(claimed) if claimed else None
    recall = len(right) / len(true) if true else None
    f1 = (2 * precision * recall / (precision + recall)) if precision and recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "claimed": sorted(claimed),
            "true": sorted(true), "invented": sorted(claimed - true), "missed": sorted(true - claimed)}
