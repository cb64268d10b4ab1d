import pytest

from r1omni.data.synth.cues import CONCEPT_PATTERNS, FACE_CONCEPTS, VOICE_CONCEPTS
from r1omni.data.synth.faithfulness import claimed_cues, cue_faithfulness

NEUTRAL_VOICE = dict(pitch_shift=0, pitch_range=4, contour=-2, rate=1.0, loudness=0, pauses=0.1,
                     tremor=0, breathiness=0.2, tension=0.2)
ANGRY = {"aus": {"AU4": 0.8, "AU24": 0.7, "AU12": 0.0},
         "prosody": {**NEUTRAL_VOICE, "loudness": 7, "tension": 0.8}}


@pytest.mark.parametrize("concept, phrases", [*FACE_CONCEPTS.items(), *VOICE_CONCEPTS.items()])
def test_every_phrase_the_world_writes_is_read_back_as_its_concept(concept, phrases):
    for phrase in phrases:
        assert claimed_cues(f"We notice {phrase} here.") == {concept}, phrase


def test_patterns_cover_every_concept():
    assert set(CONCEPT_PATTERNS) == set(FACE_CONCEPTS) | set(VOICE_CONCEPTS)


def test_faithful_hand_written_reasoning():
    text = "Her brows are knitted and her lips are pressed; she is shouting in a harsh voice."
    result = cue_faithfulness(text, ANGRY)
    assert result["true"] == ["brow_lower", "lip_press", "loud", "tense"]
    assert result["precision"] == 1.0 and result["recall"] == 1.0 and result["f1"] == 1.0


def test_invented_and_missed_cues():
    text = "He is grinning broadly with raised eyebrows, and his brows are furrowed."
    result = cue_faithfulness(text, ANGRY)
    assert result["invented"] == ["brow_raise", "smile"]
    assert result["missed"] == ["lip_press", "loud", "tense"]
    assert result["precision"] == pytest.approx(1 / 3) and result["recall"] == pytest.approx(1 / 4)


def test_negated_mentions_are_not_claims():
    assert claimed_cues("There is no smile and she is not frowning; the voice is loud.") == {"loud"}
    assert claimed_cues("Without raised eyebrows, the face stays relaxed face.") == {"still_face"}


def test_specific_patterns_win_over_general_ones():
    assert claimed_cues("the inner ends of the brows lifted") == {"inner_brow_raise"}
    assert claimed_cues("a harsh, pressed voice but pressed lips too") == {"tense", "lip_press"}


def test_no_claims_gives_no_precision():
    result = cue_faithfulness("I cannot tell.", ANGRY)
    assert result["precision"] is None and result["recall"] == 0.0 and result["f1"] == 0.0
