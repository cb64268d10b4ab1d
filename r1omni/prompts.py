"""Chat prompts (the paper's and label-listing ones, named in `PROMPTS`) and answer extraction."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from r1omni.labels import ALL_LABELS, emotions_named

VIDEO_PLACEHOLDER = "<video>"
AUDIO_PLACEHOLDER = "<audio>"
MODALITIES = ("video", "audio")
PLACEHOLDERS = {"video": VIDEO_PLACEHOLDER, "audio": AUDIO_PLACEHOLDER}
# The `--modal` settings of R1-Omni's inference script, as the modalities each one shows the model.
MODAL_SETTINGS = {"video_audio": ("video", "audio"), "video": ("video",), "audio": ("audio",)}

FORMAT_INSTRUCTION = (
    "Output the thinking process in <think> </think> and final emotion in <answer> </answer> tags."
)


@dataclass(frozen=True)
class NamedPrompt:
    """A user question; `{labels}` in it is filled with the allowed labels."""

    name: str
    question: str

    @property
    def needs_labels(self) -> bool:
        return "{labels}" in self.question


PROMPTS: dict[str, NamedPrompt] = {
    # The R1-Omni training prompt, verbatim: no label list is given.
    "r1omni": NamedPrompt(
        "r1omni",
        "As an emotional recognition expert; throughout the video, which emotion conveyed by the "
        "characters is the most obvious to you?  " + FORMAT_INSTRUCTION,
    ),
    # Perception pre-training (captions): what is seen and heard, no emotion asked for.
    "describe": NamedPrompt(
        "describe",
        "Describe what the person's face shows and what their voice sounds like throughout the clip.",
    ),
    # Names the allowed answers, which stops answers outside the vocabulary scoring zero.
    "options": NamedPrompt(
        "options",
        "As an emotional recognition expert; throughout the clip, which emotion conveyed by the "
        "characters is the most obvious to you? Choose exactly one of: {labels}.  "
        + FORMAT_INSTRUCTION,
    ),
    # For training on rows that carry a face only, a voice only or both: says which the model is
    # given, then asks as `options` does.
    "mixed": NamedPrompt(
        "mixed",
        "{given} As an emotional recognition expert; which emotion conveyed by the person is the most "
        "obvious to you? Choose exactly one of: {labels}.  " + FORMAT_INSTRUCTION,
    ),
}

# What the `mixed` prompt says the model is given, by the modalities present.
GIVEN = {("video",): "You see the person's picture only; there is no sound.",
         ("audio",): "You hear the person's voice only; there is no picture.",
         ("video", "audio"): "You see the person and hear their voice."}


def lists_labels(prompt: str) -> bool:
    """Whether the prompt named `prompt` lists the allowed labels (and so needs them)."""
    return prompt in PROMPTS and PROMPTS[prompt].needs_labels


def build_messages(
    prompt: str = "r1omni",
    modalities: Iterable[str] = MODALITIES,
    labels: Sequence[str] | None = None,
    system: str | None = None,
) -> list[dict[str, str]]:
    """Chat messages for one clip: placeholders for the modalities present, then the question."""
    if prompt not in PROMPTS:
        raise ValueError(f"unknown prompt {prompt!r}; choose one of: {', '.join(PROMPTS)}")
    chosen = PROMPTS[prompt]
    present = list(dict.fromkeys(modalities))
    unknown = [m for m in present if m not in PLACEHOLDERS]
    if unknown or not present:
        raise ValueError(f"modalities must be a non-empty subset of {MODALITIES}, got {present}")
    if chosen.needs_labels and not labels:
        raise ValueError(f"prompt {prompt!r} lists the allowed labels: pass labels=")
    # Keep the order video, audio whatever order the caller gave.
    shown = tuple(m for m in MODALITIES if m in present)
    question = chosen.question.format(labels=", ".join(labels or ()), given=GIVEN[shown])
    header = "\n".join(PLACEHOLDERS[m] for m in shown)
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": f"{header}\n{question}"})
    return messages


_TAG = re.compile(r"</?(?:think|answer)>")
# An answer that negates ("not happy", "definitely isn't sad") names no emotion it holds.
_NEGATION = re.compile(r"\b(?:not|no|never|neither|nor|without|hardly|barely|none|nothing)\b|n['’]t\b")


def first_block(text, tag: str) -> str | None:
    """The text between the first ``<tag>`` and the first ``</tag>`` after it, or None. Two
    `str.find` calls: linear in the text, where the regex ``<tag>(.*?)</tag>`` retries from
    every opening tag (quadratic on a completion of repeated opening tags)."""
    if not isinstance(text, str):
        return None
    start = text.find(f"<{tag}>")
    if start < 0:
        return None
    start += len(tag) + 2
    end = text.find(f"</{tag}>", start)
    return None if end < 0 else text[start:end]


def extract_answer(
    text: str, lenient: bool = False, vocab: Iterable[str] | None = None
) -> str | None:
    """The stripped content of the first complete ``<answer>…</answer>``, or None if absent.

    Lenient mode returns a canonical label instead: the one emotion the answer names (through
    the synonym map, any case), or None when it names none, several, one outside `vocab`, holds
    nested tags or a negation, or when the completion has more than one answer block.
    """
    block = first_block(text, "answer")
    if block is None:
        return None
    answer = block.strip()
    if not lenient:
        return answer
    if _TAG.search(answer) or text.count("<answer>") > 1 or _NEGATION.search(answer.lower()):
        return None
    named = emotions_named(answer)
    if len(named) != 1:
        return None
    allowed = tuple(vocab) if vocab is not None else ALL_LABELS
    return named[0] if named[0] in allowed else None


def extract_think(text: str) -> str | None:
    """The stripped content of the first complete ``<think>…</think>``, or None if absent."""
    block = first_block(text, "think")
    return None if block is None else block.strip()
