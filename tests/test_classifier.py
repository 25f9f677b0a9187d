"""The intent classifier's fast scoring path gives sklearn's margins exactly."""
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from nlu_eval import load_examples  # noqa: E402  (the held-out reader: text and intent, annotations stripped)


def _examples(path: Path):
    return [(e["text"], e["intent"]) for e in load_examples(path.parent, path.name)]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.nlu.training_data.message import Message
    from rasa.shared.nlu.training_data.training_data import TrainingData

    from rasa_addons.classifier import PolicyIntentClassifier

    pairs = list(_examples(ROOT / "data" / "nlu" / "leave_housing_families.yml")) \
        + list(_examples(ROOT / "data" / "nlu" / "dialogue.yml"))
    data = TrainingData([Message(data={"text": t, "intent": i}) for t, i in pairs])
    storage = LocalModelStorage(tmp_path_factory.mktemp("model"))
    component = PolicyIntentClassifier.create({}, storage, Resource("policy_intent"), None)
    component.train(data)
    return component


def test_fast_margins_equal_sklearns(trained):
    texts = [t for t, _ in _examples(ROOT / "tests" / "nlu" / "heldout_leave_housing_families.yml")]
    texts += ["", "😀😀", "育儿假 育儿假 育儿假", "ABC abc 產假", "x" * 500]
    reference = trained.model["svm"].decision_function(trained._features(texts))
    fast = trained._margins(texts)
    assert fast.shape == reference.shape == (len(texts), len(trained.model["svm"].classes_))
    np.testing.assert_allclose(fast, reference, rtol=1e-10, atol=1e-12)


def test_the_classifier_ranks_with_the_fast_margins(trained):
    from rasa.shared.nlu.training_data.message import Message

    message = Message(data={"text": "男方护理假能休几天"})
    trained.process([message])
    ranking = message.get("intent_ranking")
    assert message.get("intent")["name"] == ranking[0]["name"] == "ask_paternity_leave"
    confidences = [r["confidence"] for r in ranking]
    assert confidences == sorted(confidences, reverse=True) and 0 < confidences[-1] and confidences[0] <= 1
    assert len(ranking) == trained.config["ranking_length"]
