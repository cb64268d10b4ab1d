import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from r1omni.labels import ALL_LABELS
from r1omni.rewards import (
    accuracy_reward,
    completion_text,
    faithfulness_reward,
    format_reward,
    reward_function,
    weighted_sum,
)

GOOD = "<think>The brows are lowered and the voice is loud.</think>\n<answer>angry</answer>"


def test_accuracy_canonical_and_exact_modes():
    completions = [
        "<think>x</think><answer>angry</answer>",
        "<think>x</think><answer>Anger</answer>",
        "<think>x</think><answer>sad</answer>",
        "<think>x</think>angry",
    ]
    solutions = ["angry"] * 4
    assert accuracy_reward(completions, solutions) == [1.0, 1.0, 0.0, 0.0]
    assert accuracy_reward(completions, solutions, mode="exact") == [1.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="mode"):
        accuracy_reward(completions, solutions, mode="fuzzy")


def test_solution_may_carry_answer_tags_and_missing_solution_gives_none():
    assert accuracy_reward([GOOD], ["<answer>angry</answer>"]) == [1.0]
    assert accuracy_reward([GOOD], ["<answer>angry</answer>"], mode="exact") == [1.0]
    assert accuracy_reward([GOOD], [None]) == [None]


def test_chat_message_completions_as_trl_passes_them():
    message = [{"role": "assistant", "content": GOOD}]
    parts = [{"role": "assistant", "content": [{"type": "text", "text": GOOD}]}]
    assert completion_text(message) == GOOD == completion_text(parts)
    assert accuracy_reward([message, parts], ["angry", "angry"]) == [1.0, 1.0]
    assert format_reward([message]) == [1.0]


@pytest.mark.parametrize("completion, strict, original", [
    (GOOD, 1.0, 1.0),
    ("  " + GOOD + "\n", 1.0, 0.0),  # the original regex does not strip
    ("<answer>angry</answer>", 0.0, 0.0),
    ("<think>a</think><answer>angry</answer> trailing", 0.0, 0.0),
    ("<think>a</think><answer>angry</answer><answer>sad</answer>", 0.0, 1.0),  # repeated answer
    ("<think><think>a</think></think><answer>angry</answer>", 0.0, 1.0),  # nested think
    ("<think>a</think><answer>  </answer>", 0.0, 1.0),  # blank answer
    ("<think></think><answer>angry</answer>", 0.0, 1.0),  # no reasoning
    ("<think> \n </think><answer>angry</answer>", 0.0, 1.0),  # blank reasoning
    ("", 0.0, 0.0),
])
def test_format_reward_strict_and_original(completion, strict, original):
    assert format_reward([completion]) == [strict]
    assert format_reward([completion], strict=False) == [original]


def test_hostile_completions():
    every = "<think>t</think><answer>" + ", ".join(ALL_LABELS) + "</answer>"
    long = "<think>" + "blah " * 200_000 + "</think><answer>angry</answer>"
    nested = "<think>t</think><answer><answer>angry</answer></answer>"
    several = "<think>t</think><answer>sad</answer><answer>angry</answer>"
    completions = [every, long, nested, several, ""]
    assert accuracy_reward(completions, ["angry"] * 5) == [0.0, 1.0, 0.0, 0.0, 0.0]
    assert format_reward(completions) == [1.0, 1.0, 0.0, 0.0, 0.0]
    cues = {"face_cues": ["brow_lower"], "voice_cues": ["loud"]}
    claims = "<think>" + "Furrowed brows, no smile; a loud voice? " * 20_000 + "</think><answer>angry</answer>"
    assert faithfulness_reward(completions + [claims], cues=[cues] * 6) == [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]


def test_weighted_sum_skips_none_like_trl():
    total = weighted_sum([accuracy_reward, format_reward], [2.0, 0.5])
    assert total([GOOD, "<answer>angry</answer>"], solution=["angry", "angry"]) == [2.5, 2.0]
    assert total([GOOD], solution=[None]) == [0.5]
    only_accuracy = weighted_sum([accuracy_reward])
    assert only_accuracy([GOOD], solution=[None]) == [None]
    with pytest.raises(ValueError, match="weights"):
        weighted_sum([accuracy_reward], [1.0, 2.0])


_NO_TAGS = st.text(alphabet=st.characters(blacklist_characters="<>"), max_size=200)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=400), st.sampled_from(ALL_LABELS))
def test_rewards_never_fail_and_stay_binary(text, label):
    assert accuracy_reward([text], [label])[0] in (0.0, 1.0)
    assert accuracy_reward([text], [label], mode="exact")[0] in (0.0, 1.0)
    assert format_reward([text])[0] in (0.0, 1.0)
    assert format_reward([text], strict=False)[0] in (0.0, 1.0)


@settings(max_examples=300, deadline=None)
@given(_NO_TAGS.filter(str.strip), st.sampled_from(ALL_LABELS), st.sampled_from(["", " ", "\n", "\n\n"]))
def test_well_formed_completions_score_full_marks(think, label, gap):
    completion = f"<think>{think}</think>{gap}<answer>{label}</answer>"
    assert format_reward([completion]) == [1.0]
    assert format_reward([completion], strict=False) == [1.0]
    assert accuracy_reward([completion], [label]) == [1.0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(ALL_LABELS), min_size=2, max_size=6, unique=True), st.sampled_from(ALL_LABELS))
def test_answers_naming_several_emotions_never_score(named, label):
    completion = f"<think>t</think><answer>{' or '.join(named)}</answer>"
    assert accuracy_reward([completion], [label]) == [0.0]


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_format_reward_agrees_with_a_plain_reading_of_the_rule(text):
    """Strict format == one think block then one answer block, nothing else, no inner tags."""
    stripped = text.strip()
    match = re.fullmatch(r"<think>(.*?)</think>\s*<answer>(.*?)</answer>", stripped, re.DOTALL)
    plain = bool(
        match and not re.search(r"</?(think|answer)>", match.group(1) + match.group(2))
        and match.group(1).strip() and match.group(2).strip()
    )
    assert format_reward([text]) == [float(plain)]


# ----------------------------------------------------------------------------- reward holes

_TOKENS = st.lists(st.sampled_from(["<think>", "</think>", "<answer>", "</answer>", " ", "\n", "x", "happy", "sad",
                                    "not"]), max_size=30).map("".join)
NEGATIONS = ["not", "definitely not", "no", "never", "isn't", "is not", "it isn’t", "without", "neither"]
# Letters that look like ASCII ones: Cyrillic а е о р с у х, Greek ο, fullwidth ａ.
HOMOGLYPHS = {"a": ["\u0430", "\uff41"], "e": ["\u0435"], "o": ["\u043e", "\u03bf"], "p": ["\u0440"],
              "c": ["\u0441"], "y": ["\u0443"], "x": ["\u0445"]}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(NEGATIONS), st.sampled_from(ALL_LABELS), st.sampled_from(["", "The person is ", "Clearly "]))
def test_a_negated_answer_never_scores(negation, label, lead):
    completion = f"<think>reasons</think><answer>{lead}{negation} {label}</answer>"
    assert accuracy_reward([completion], [label]) == [0.0]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(ALL_LABELS), st.data())
def test_look_alike_letters_never_score(label, data):
    positions = [i for i, ch in enumerate(label) if ch in HOMOGLYPHS]
    if not positions:
        return
    at = data.draw(st.sampled_from(positions))
    fake = label[:at] + data.draw(st.sampled_from(HOMOGLYPHS[label[at]])) + label[at + 1 :]
    assert accuracy_reward([f"<think>t</think><answer>{fake}</answer>"], [label]) == [0.0]


@settings(max_examples=500, deadline=None)
@given(_TOKENS, st.sampled_from(["happy", "sad"]))
def test_tag_tricks_score_only_a_single_clean_answer(text, label):
    """Whatever the arrangement of tags, accuracy 1 needs exactly one answer block that names the
    label alone, without nested tags or a negation."""
    if accuracy_reward([text], [label]) == [1.0]:
        assert text.count("<answer>") == 1
        block = text.split("<answer>", 1)[1].split("</answer>", 1)[0]
        assert "<" not in block and "not" not in block and block.count(label) >= 1
        assert ("sad" if label == "happy" else "happy") not in block


@settings(max_examples=500, deadline=None)
@given(_TOKENS)
def test_the_linear_original_format_check_agrees_with_the_regex(text):
    original = re.fullmatch(r"<think>.*?</think>\s*<answer>.*?</answer>", text, re.DOTALL) is not None
    assert format_reward([text], strict=False) == [float(original)]


def test_answer_parsing_is_linear_in_the_completion():
    """160 KB of repeated opening tags took 56 s with the regexes; each call is now one pass."""
    import time

    for text in ("<answer>" * 20_000, "<think>" * 20_000 + "</think>" * 20_000, "</think> " * 20_000):
        started = time.perf_counter()
        accuracy_reward([text], ["happy"])
        format_reward([text], strict=False)
        format_reward([text])
        assert time.perf_counter() - started < 5  # seconds; quadratic parsing takes minutes


# ----------------------------------------------------------------------------- faithfulness

ANGRY = {"face_cues": ["brow_lower", "lip_press"], "voice_cues": ["loud", "tense"]}
TRUE_SENTENCES = ["The brows are furrowed.", "The face shows pressed lips.", "The voice is loud.",
                  "The audio reveals a tense voice."]
FALSE_SENTENCES = ["The face shows a smile.", "Acoustically, the speech has pressed lips.",
                   "The voice is trembling.", "There is no frown."]
FILLER = ["These cues point to anger.", "It is hard to say.", "There is no smile."]


def faith(texts, cues=ANGRY, **columns):
    return faithfulness_reward(texts, solution=["angry"] * len(texts), cues=[cues] * len(texts), **columns)


def think(*sentences, answer="angry"):
    return f"<think>{' '.join(sentences)}</think>\n<answer>{answer}</answer>"


def test_faithfulness_reward_counts_true_and_false_claims_against_the_cues_there_were():
    assert faith([think(*TRUE_SENTENCES)]) == [1.0]
    assert faith([think(TRUE_SENTENCES[0])]) == [0.25]
    assert faith([think(TRUE_SENTENCES[0], FALSE_SENTENCES[0])]) == [0.0]
    assert faith([think(*FALSE_SENTENCES)]) == [-1.0]  # four false claims against four true cues
    assert faith([think(TRUE_SENTENCES[0], FALSE_SENTENCES[0])], false_cost=2.0) == [-0.25]


def test_faithfulness_reward_nothing_to_earn_without_reasoning_or_claims():
    assert faith(["<answer>angry</answer>", think(""), think("   "), think(*FILLER), "The voice is loud."]) == \
        [0.0, 0.0, 0.0, 0.0, 0.0]


def test_faithfulness_reward_reads_only_the_reasoning_not_the_answer():
    assert faith([think(TRUE_SENTENCES[0], answer="angry, the voice is loud and tense")]) == [0.25]


def test_faithfulness_reward_none_for_rows_without_a_measurement():
    rewards = faithfulness_reward([think(*TRUE_SENTENCES)] * 3, solution=["angry"] * 3,
                                  cues=[ANGRY, None, {"aus": {}}], meta=[None, None, {"duration": 2.0}])
    assert rewards == [1.0, None, None]
    assert faithfulness_reward([think(*TRUE_SENTENCES)], solution=["angry"]) == [None]  # no columns at all


def test_faithfulness_reward_of_an_audio_only_prompt():
    rewards = faith([think("The brows are furrowed.", *TRUE_SENTENCES[2:])], modalities=[("audio",)])
    assert rewards == [(2 - 1) / 2]  # two true voice cues, one claim about the face it was not shown


def test_faithfulness_reward_selectable_by_name_and_weighted():
    combined = reward_function({"accuracy": 1.0, "format": 1.0, "faithfulness": 2.0})
    assert combined([think(*TRUE_SENTENCES)], solution=["angry"], cues=[ANGRY]) == [4.0]
    assert combined([think(*TRUE_SENTENCES)], solution=["angry"], cues=[None]) == [2.0]  # no measurement: skipped


sentence = st.sampled_from(TRUE_SENTENCES + FALSE_SENTENCES + FILLER)


@settings(max_examples=200, deadline=None)
@given(st.lists(sentence, max_size=10), st.sampled_from(FALSE_SENTENCES), st.sampled_from(TRUE_SENTENCES))
def test_faithfulness_reward_properties(sentences, false, true):
    (base,) = faith([think(*sentences)])
    assert -1.0 <= base <= 1.0
    assert faith([think(*sentences, *sentences, *sentences)]) == [base]  # repeating claims earns nothing
    assert faith([think(*reversed(sentences))]) == [base]  # the order of sentences does not matter
    assert faith([think(*sentences, answer="angry " + " ".join(TRUE_SENTENCES))]) == [base]  # nor the answer
    assert faith([think(*sentences, false)])[0] <= base  # a false claim never earns
    assert faith([think(*sentences, true)])[0] >= base  # a true one never costs
