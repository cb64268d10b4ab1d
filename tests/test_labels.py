import pytest

from r1omni.errors import LabelError
from r1omni.labels import ALL_LABELS, VOCABULARIES, canonical, emotions_named, vocabulary

EXPECTED_SIZES = {"dfew": 7, "mafw": 11, "ravdess": 8, "cremad": 6, "emodb": 7, "mer2023": 6, "fer2013": 7, "ckplus": 7}


def test_vocabulary_sizes_and_official_order():
    assert {k: len(v) for k, v in VOCABULARIES.items()} == EXPECTED_SIZES
    assert VOCABULARIES["dfew"] == ("happy", "sad", "neutral", "angry", "surprise", "disgust", "fear")
    assert VOCABULARIES["mafw"][:7] == VOCABULARIES["dfew"]
    assert VOCABULARIES["ravdess"][1] == "calm"
    for vocab in VOCABULARIES.values():
        assert all(label == label.lower() for label in vocab)
        assert len(set(vocab)) == len(vocab)


@pytest.mark.parametrize("raw, expected", [
    ("fearful", "fear"), ("Happiness", "happy"), ("anger", "angry"), ("surprised", "surprise"),
    ("contemptuous", "contempt"), ("anxious", "anxiety"), ("helpless", "helplessness"),
    ("disappointed", "disappointment"), (" SAD ", "sad"), ("Neutral.", "neutral"), ("bored", "boredom"),
])
def test_canonical_applies_synonyms(raw, expected):
    assert canonical(raw) == expected


def test_unknown_label_lists_the_vocabulary():
    with pytest.raises(LabelError, match=r"unknown label 'excited'.*happy, sad, neutral"):
        canonical("excited", VOCABULARIES["dfew"])
    with pytest.raises(LabelError, match="contempt"):
        canonical("contempt", VOCABULARIES["dfew"])  # known emotion, not in DFEW
    with pytest.raises(LabelError):
        canonical(None)


def test_vocabulary_lookup_by_dataset_name():
    assert vocabulary("CREMA-D") == VOCABULARIES["cremad"]
    with pytest.raises(LabelError, match="unknown dataset"):
        vocabulary("imagenet")


def test_vocabulary_union_keeps_the_first_order_and_adds_the_rest():
    assert vocabulary("fer2013+emodb") == (*VOCABULARIES["fer2013"], "boredom")
    assert vocabulary("emodb + fer2013")[-1] == "surprise"
    with pytest.raises(LabelError, match="'imagenet'"):
        vocabulary("emodb+imagenet")


def test_vocabulary_intersection_keeps_the_shared_labels_in_the_first_order():
    assert vocabulary("emodb&ravdess") == ("angry", "disgust", "fear", "happy", "sad", "neutral")
    assert vocabulary("ravdess & emodb") == ("neutral", "happy", "sad", "angry", "fear", "disgust")
    assert vocabulary("emodb&ravdess&ckplus") == ("angry", "disgust", "fear", "happy", "sad")
    with pytest.raises(LabelError, match="not both"):
        vocabulary("emodb&ravdess+ckplus")
    with pytest.raises(LabelError, match="'imagenet'"):
        vocabulary("emodb&imagenet")


def test_emotions_named_finds_each_emotion_once():
    assert emotions_named("Happy, maybe happiness or SAD") == ["happy", "sad"]
    assert emotions_named("nothing here") == []
    assert set(emotions_named(" ".join(ALL_LABELS))) == set(ALL_LABELS)
