"""Verifiable rewards for GRPO, with TRL's reward-function signature.

``fn(completions, solution, **columns) -> list[float | None]``: `completions` are strings or
chat-message lists (TRL passes ``[{"role": "assistant", "content": …}]``), `solution` the
labels (bare, or wrapped in ``<answer>`` tags as the original R1-Omni data has them). None
means "no reward for this sample" (no solution), which TRL and r1omni skip in the sum.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence

from r1omni.claims import check_claims, faithfulness, measurement_of
from r1omni.errors import ConfigError
from r1omni.labels import lookup
from r1omni.prompts import extract_answer, extract_think

RewardFn = Callable[..., list]

# The original R1-V / R1-Omni format check, ``<think>.*?</think>\s*<answer>.*?</answer>`` as a
# full match, accepts repeated tags: it holds when the text opens with <think>, closes with
# </answer> and has </think>, blank space and <answer> in between. Checked that way (linear):
# the regex backtracks quadratically on repeated tags.
_THINK_THEN_ANSWER = re.compile(r"</think>\s*<answer>")
# Strict: exactly one non-blank think block then one non-blank answer, no tags nested inside either.
_NO_TAG = r"(?:(?!</?(?:think|answer)>).)*"
_FORMAT_STRICT = re.compile(rf"<think>({_NO_TAG})</think>\s*<answer>({_NO_TAG})</answer>", re.DOTALL)


def _strict_format(text: str) -> bool:
    match = _FORMAT_STRICT.fullmatch(text.strip())
    return match is not None and bool(match.group(1).strip()) and bool(match.group(2).strip())


def completion_text(completion) -> str:
    """The text of a completion given as a string or as a list of chat messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Sequence) and completion and isinstance(completion[-1], dict):
        content = completion[-1].get("content", "")
        if isinstance(content, list):  # multimodal content parts
            return "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return content if isinstance(content, str) else ""
    return ""


def _gold(solution) -> str | None:
    if solution is None:
        return None
    text = str(solution)
    inner = extract_answer(text)
    return (inner if inner is not None else text).strip()


def accuracy_reward(
    completions: Sequence, solution: Sequence, mode: str = "canonical", **_columns
) -> list[float | None]:
    """1.0 when the completion's answer matches the label, else 0.0 (None without a label).

    `mode="canonical"` (default) compares canonical labels, so ``Happiness`` matches ``happy``
    and an answer naming several emotions scores 0. `mode="exact"` is the original R1-Omni
    check: the stripped answer text equals the label, case-sensitive.
    """
    if mode not in ("canonical", "exact"):
        raise ValueError(f"accuracy_reward mode must be 'canonical' or 'exact', got {mode!r}")
    rewards: list[float | None] = []
    for completion, sol in zip(completions, solution, strict=True):
        gold = _gold(sol)
        if not gold:
            rewards.append(None)
            continue
        text = completion_text(completion)
        if mode == "exact":
            rewards.append(float(extract_answer(text) == gold))
        else:
            answer = extract_answer(text, lenient=True)
            rewards.append(float(answer is not None and answer == lookup(gold)))
    return rewards


def format_reward(completions: Sequence, strict: bool = True, **_columns) -> list[float]:
    """1.0 when the whole completion is ``<think>…</think>`` then ``<answer>…</answer>``.

    `strict` (default) also demands a single block of each, no nested tags, and reasoning and
    an answer that are not blank; `strict=False` is the original regex, which accepts repeated
    answer tags and empty reasoning.
    """
    if strict:
        return [float(_strict_format(completion_text(c))) for c in completions]
    return [float(_original_format(completion_text(c))) for c in completions]


def _original_format(text: str) -> bool:
    opening, closing = "<think>", "</answer>"
    if not (text.startswith(opening) and text.endswith(closing)) or len(text) < len(opening) + len(closing):
        return False
    return _THINK_THEN_ANSWER.search(text, len(opening), len(text) - len(closing)) is not None


def faithfulness_reward(completions: Sequence, cues: Sequence | None = None, meta: Sequence | None = None,
                        modalities: Sequence | None = None, false_cost: float = 1.0, **_columns
                        ) -> list[float | None]:
    """How far the claims of each completion's ``<think>`` hold against its clip's measurement
    (`r1omni.claims`): (true − `false_cost` × false claims) / the true claims there were to make,
    in [−1, 1]. A claim about a modality the sentence does not concern or the model was not
    shown is false; repeating a claim adds nothing; a negated mention claims nothing unless it
    denies what is there; claims outside ``<think>`` (in the answer) are not read. No reasoning,
    or reasoning without claims, earns 0. A row without a measurement (`cues` with the
    synthetic world's ``face_cues``/``voice_cues``, or `meta` with measured ``acoustics``) gets None.
    `modalities`: what each prompt showed (default both)."""
    rewards: list[float | None] = []
    for i, completion in enumerate(completions):
        measured = measurement_of(_column(cues, i), _column(meta, i), _column(modalities, i) or ("video", "audio"))
        if measured is None:
            rewards.append(None)
            continue
        think = extract_think(completion_text(completion))
        rewards.append(faithfulness(check_claims(think, measured), measured, false_cost) if think else 0.0)
    return rewards


def _column(values: Sequence | None, i: int):
    return values[i] if values is not None else None


def combine(per_fn: Sequence[Sequence[float | None]], weights: Sequence[float]) -> list[float | None]:
    """Per sample, the sum of each function's reward times its weight, skipping None as TRL
    does; None where every function skipped the sample."""
    totals: list[float | None] = []
    for i in range(len(per_fn[0]) if per_fn else 0):
        parts = [w * r[i] for w, r in zip(weights, per_fn) if r[i] is not None]
        totals.append(math.fsum(parts) if parts else None)
    return totals


def weighted_sum(reward_fns: Sequence[RewardFn], weights: Sequence[float] | None = None) -> RewardFn:
    """One reward function summing `reward_fns` times `weights` (`combine`)."""
    weights = [1.0] * len(reward_fns) if weights is None else list(weights)
    if len(weights) != len(reward_fns):
        raise ValueError(f"{len(reward_fns)} reward functions but {len(weights)} weights")

    def combined(completions, solution=None, **columns) -> list[float | None]:
        return combine([fn(completions, solution=solution, **columns) for fn in reward_fns], weights)

    combined.__name__ = "+".join(getattr(f, "__name__", "reward") for f in reward_fns)
    return combined


BUILTIN = ("accuracy", "format", "faithfulness")


def import_reward(name: str) -> RewardFn:
    """``package.module:function`` -> the function. Importing runs the module's code: name only
    modules you trust. It is resolved when the config is validated, before any model loads, and
    must take TRL's reward arguments ``(completions, solution=…, **columns)``."""
    import importlib
    import inspect

    module, sep, attribute = name.partition(":")
    if not sep or not module or not attribute:
        raise ConfigError(f"unknown reward {name!r}; use {', '.join(BUILTIN)} or module:function")
    try:
        function = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError, ValueError) as err:
        raise ConfigError(f"reward {name!r}: cannot import ({err}); use {', '.join(BUILTIN)} or module:function") \
            from None
    if not callable(function):
        raise ConfigError(f"reward {name!r} is not a function")
    try:
        inspect.signature(function).bind([], solution=[])
    except (TypeError, ValueError):
        raise ConfigError(f"reward {name!r} does not take a reward function's arguments "
                          "(completions, solution=..., **columns)") from None
    return function


def reward_functions(names, accuracy_mode: str = "canonical") -> dict[str, RewardFn]:
    """Each named reward: ``accuracy``, ``format``, ``faithfulness``, or ``module:function`` for
    any function with TRL's reward signature (imported here, so a bad name fails early)."""
    builtin = {"accuracy": lambda c, solution, **k: accuracy_reward(c, solution, mode=accuracy_mode),
               "format": lambda c, **k: format_reward(c), "faithfulness": faithfulness_reward}
    return {name: builtin.get(name) or import_reward(name) for name in names}


def reward_function(weights: dict[str, float], accuracy_mode: str = "canonical") -> RewardFn:
    """The weighted sum of the named rewards (`reward_functions`)."""
    return weighted_sum(list(reward_functions(weights, accuracy_mode).values()), list(weights.values()))
