"""Reading a reasoning's claims and judging them against a clip's measurement (r1omni.claims)."""

import pytest

from r1omni.claims import (
    CUE_PATTERNS,
    LEVEL_WORDS,
    Measurement,
    check_claims,
    claim_report,
    measurement_of,
    read_claims,
)
from r1omni.data.synth.cues import FACE_CONCEPTS, VOICE_CONCEPTS

ANGRY = {"face_cues": ["brow_lower", "lip_press"], "voice_cues": ["loud", "tense"]}
LEVELS = {"acoustics": {"pitch": {"value": 30.1, "level": 2, "bounds": [20.0, 25.0]},
                        "loudness": {"value": 0.2, "level": 0, "bounds": [0.5, 1.0]},
                        "variation": {"value": 3.0, "level": 1, "bounds": [2.0, 4.0]},
                        "tempo": {"value": 4.0, "level": 1, "bounds": [3.0, 5.0]}}}


def names(text, kind="cues"):
    return {c.name for c in read_claims(text, kind) if not c.negated}


@pytest.mark.parametrize("concept, phrases", [*FACE_CONCEPTS.items(), *VOICE_CONCEPTS.items()])
def test_every_phrase_the_world_writes_is_read_back_as_its_concept(concept, phrases):
    for phrase in phrases:
        assert names(f"We notice {phrase} here.") == {concept}, phrase


def test_patterns_cover_every_concept_with_its_modality():
    assert set(CUE_PATTERNS) == set(FACE_CONCEPTS) | set(VOICE_CONCEPTS)
    assert all(CUE_PATTERNS[c][0] == "face" for c in FACE_CONCEPTS)
    assert all(CUE_PATTERNS[c][0] == "voice" for c in VOICE_CONCEPTS)


def test_faithful_hand_written_reasoning():
    report = claim_report("Her brows are knitted and her lips are pressed; she is shouting in a harsh voice.",
                          measurement_of(ANGRY))
    assert sorted(report["true"]) == ["brow_lower", "lip_press", "loud", "tense"]
    assert report["precision"] == 1.0 and report["recall"] == 1.0 and report["false"] == {}


def test_invented_and_missed_cues():
    report = claim_report("He is grinning broadly with raised eyebrows, and his brows are furrowed.",
                          measurement_of(ANGRY))
    assert report["false"] == {"smile": "absent", "brow_raise": "absent"}
    assert report["missed"] == ["lip_press", "loud", "tense"]
    assert report["precision"] == pytest.approx(1 / 3) and report["recall"] == pytest.approx(1 / 4)


def test_a_face_cue_said_of_the_voice_is_false():
    # The README's screenshot: face cues in the sentence about the sound.
    text = "Acoustically, the speech has mouth corners pulled down and lips pressed together."
    verdicts = check_claims(text, measurement_of({"face_cues": ["mouth_down", "lip_press"], "voice_cues": ["soft"]}))
    assert [(v.claim.name, v.holds, v.why) for v in verdicts] == [
        ("mouth_down", False, "wrong modality"), ("lip_press", False, "wrong modality")]
    # The same cues said of the face hold; a sentence naming no modality takes the cue's own.
    said_of_face = "The face shows mouth corners pulled down. Lips pressed together too."
    assert all(v.holds for v in check_claims(said_of_face, measurement_of({"face_cues": ["mouth_down", "lip_press"]})))


def test_a_comparison_after_the_cue_does_not_move_it_to_the_other_modality():
    verdicts = check_claims("The polite smile does not match the voice.", measurement_of({"face_cues": ["smile"]}))
    assert [(v.claim.name, v.holds) for v in verdicts] == [("smile", True)]


def test_claims_about_a_modality_the_model_was_not_shown_are_false():
    audio_only = measurement_of(ANGRY, modalities=("audio",))
    verdicts = check_claims("Furrowed brows and a loud voice.", audio_only)
    assert [(v.claim.name, v.holds, v.why) for v in verdicts] == [("brow_lower", False, "not shown"),
                                                                   ("loud", True, "true")]
    assert audio_only.truth_count() == 2  # only the voice's cues were there to say


def test_negations_claim_nothing_unless_they_deny_a_present_cue():
    verdicts = check_claims("There is no smile, and she is not frowning; the voice is loud.", measurement_of(ANGRY))
    assert [(v.claim.name, v.holds, v.why) for v in verdicts] == [
        ("smile", None, "denies an absent cue"), ("brow_lower", False, "denies a present cue"), ("loud", True, "true")]


def test_specific_patterns_win_over_general_ones():
    assert names("the inner ends of the brows lifted") == {"inner_brow_raise"}
    assert names("a harsh, pressed voice but pressed lips too") == {"tense", "lip_press"}


def test_repeated_claims_count_once():
    once = claim_report("The brows are furrowed.", measurement_of(ANGRY))
    thrice = claim_report("The brows are furrowed. Furrowed brows! The brows are furrowed.", measurement_of(ANGRY))
    assert once["precision"] == thrice["precision"] and once["recall"] == thrice["recall"]
    assert len(thrice["verdicts"]) == 1


def test_levels_are_read_and_judged_against_the_measured_thirds():
    measured = measurement_of(meta=LEVELS, modalities=("audio",))
    text = "The voice is high-pitched and moderately loud, with a widely varying pitch contour and a moderate tempo."
    verdicts = check_claims(text, measured)
    assert [(v.claim.name, v.claim.level, v.holds) for v in verdicts] == [
        ("pitch", 2, True), ("loudness", 1, False), ("variation", 2, False), ("tempo", 1, True)]
    assert verdicts[1].why == "measured quiet"
    assert claim_report(text, measured)["missed"] == ["quiet", "moderately varied"]


def test_moderate_is_a_tempo_only_with_the_tempo_named():
    assert read_claims("a moderate voice", "levels") == []
    assert [(c.name, c.level) for c in read_claims("moderate pace", "levels")] == [("tempo", 1)]


def test_contradictory_levels_cannot_both_hold():
    measured = measurement_of(meta=LEVELS, modalities=("audio",))
    holds = [v.holds for v in check_claims("It is low-pitched or high-pitched, maybe mid-pitched.", measured)]
    assert sorted(holds, key=str) == [False, False, True]


def test_a_speech_model_claiming_a_face_is_judged_false():
    verdicts = check_claims("The face shows a smile; the voice is loud.", measurement_of(meta=LEVELS,
                                                                                          modalities=("audio",)))
    assert [(v.claim.name, v.holds, v.why) for v in verdicts] == [("smile", False, "not shown"),
                                                                   ("loudness", False, "measured quiet")]


def test_rows_without_a_measurement_have_none():
    assert measurement_of(None, None) is None
    assert measurement_of({"aus": {"AU4": 0.9}}, {"duration": 2.0}) is None  # cues without describable lists
    assert measurement_of(ANGRY, modalities=()) is None
    assert measurement_of(meta=LEVELS, modalities=("video",)) is None  # levels of a voice it did not hear
    assert measurement_of(meta={"acoustics": {"pitch": {"level": 7}}}) is None  # not a level


def test_measurements_round_trip_through_json():
    for measured in (measurement_of(ANGRY), measurement_of(meta=LEVELS, modalities=("audio",))):
        assert Measurement.from_json(measured.to_json()) == measured
    assert set(LEVEL_WORDS) == set(LEVELS["acoustics"])
