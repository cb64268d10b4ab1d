import pytest

from r1omni.labels import VOCABULARIES
from r1omni.prompts import FORMAT_INSTRUCTION, build_messages, extract_answer, extract_think


def test_r1omni_preset_is_the_papers_prompt_with_both_placeholders():
    (message,) = build_messages("r1omni")
    assert message["role"] == "user"
    assert message["content"].startswith("<video>\n<audio>\nAs an emotional recognition expert; ")
    assert message["content"].endswith(FORMAT_INSTRUCTION)
    assert "happy" not in message["content"]  # the paper gives no label list


def test_placeholders_follow_the_modalities_present():
    assert build_messages(modalities=["audio"])[0]["content"].startswith("<audio>\nAs")
    assert "<audio>" not in build_messages(modalities=["video"])[0]["content"]
    assert build_messages(modalities=["audio", "video"])[0]["content"].startswith("<video>\n<audio>\n")
    with pytest.raises(ValueError, match="modalities"):
        build_messages(modalities=["smell"])
    with pytest.raises(ValueError, match="modalities"):
        build_messages(modalities=[])


def test_options_preset_lists_labels_and_requires_them():
    content = build_messages("options", labels=VOCABULARIES["dfew"])[-1]["content"]
    assert "happy, sad, neutral, angry, surprise, disgust, fear" in content
    with pytest.raises(ValueError, match="labels"):
        build_messages("options")
    with pytest.raises(ValueError, match="unknown prompt"):
        build_messages("chatty")


def test_mixed_preset_says_what_the_model_is_given():
    labels = VOCABULARIES["fer2013"]
    face = build_messages("mixed", ["video"], labels=labels)[-1]["content"]
    voice = build_messages("mixed", ["audio"], labels=labels)[-1]["content"]
    both = build_messages("mixed", ["audio", "video"], labels=labels)[-1]["content"]
    assert face.startswith("<video>\nYou see the person's picture only; there is no sound.")
    assert voice.startswith("<audio>\nYou hear the person's voice only; there is no picture.")
    assert both.startswith("<video>\n<audio>\nYou see the person and hear their voice.")
    assert all("angry, disgust, fear, happy, sad, surprise, neutral" in c for c in (face, voice, both))
    with pytest.raises(ValueError, match="labels"):
        build_messages("mixed", ["video"])


def test_system_message_is_optional():
    messages = build_messages(system="You are helpful.")
    assert [m["role"] for m in messages] == ["system", "user"]


@pytest.mark.parametrize("text, expected", [
    ("<think>t</think><answer> happy </answer>", "happy"),
    ("<answer>Sad</answer><answer>happy</answer>", "Sad"),  # the first complete answer
    ("<answer>multi\nline</answer>", "multi\nline"),
    ("<answer>unterminated", None),
    ("no tags at all", None),
    ("", None),
])
def test_extract_answer_strict(text, expected):
    assert extract_answer(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("<answer>Happiness</answer>", "happy"),
    ("<answer>The person is fearful.</answer>", "fear"),
    ("<answer>happy or sad</answer>", None),  # names two emotions
    ("<answer>happy, sad, neutral, angry, surprise, disgust, fear</answer>", None),
    ("<answer>excited</answer>", None),
    ("<answer><answer>happy</answer></answer>", None),  # nested tags
    ("<answer>happy and happiness</answer>", "happy"),  # one emotion, two spellings
    ("<answer>not happy</answer>", None),  # a negation names no emotion held
    ("<answer>The speaker isn't sad</answer>", None),
    ("<answer>sad</answer><answer>happy</answer>", None),  # two answers: ambiguous
])
def test_extract_answer_lenient(text, expected):
    assert extract_answer(text, lenient=True) == expected


def test_lenient_answer_outside_vocab_is_none():
    assert extract_answer("<answer>contempt</answer>", lenient=True, vocab=VOCABULARIES["dfew"]) is None
    assert extract_answer("<answer>contempt</answer>", lenient=True, vocab=VOCABULARIES["mafw"]) == "contempt"


def test_extract_think():
    assert extract_think("<think> brows down </think><answer>angry</answer>") == "brows down"
    assert extract_think("<answer>angry</answer>") is None
    assert extract_think(None) is None
