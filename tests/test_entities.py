"""The spaCy EntityRuler component: patterns from knowledge/, merging with DIET, persistence."""
from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.config import ROOT
from bot.entity_patterns import build_patterns, valid_values
from bot.knowledge import get_knowledge
from rasa_addons.entities import PolicyEntityRuler, build_nlp, merge


@pytest.fixture(scope="module")
def kb():
    return get_knowledge()


@pytest.fixture(scope="module")
def nlp(kb):
    return build_nlp(build_patterns(kb, ROOT / "data" / "nlu" / "synonyms.yml"))


def ents(nlp, text):
    return [(e.label_, e.ent_id_ or e.text) for e in nlp(text).ents]


@pytest.mark.parametrize("text, expected", [
    ("孩子他妈是本地户口，家里俩娃，老二两岁半",
     [("applicant_role", "mother"), ("hukou", "本地"), ("children_count", "2"), ("child_order", "2"),
      ("child_age", "两岁半")]),
    ("2023年5月生的三胎，在伊旗", [("date", "2023年5月"), ("child_order", "3"), ("banner", "伊金霍洛旗")]),
    ("娃十一个月，去年腊月出生", [("child_age", "十一个月"), ("date", "去年腊月")]),
    ("分娩补贴找卫健委", [("benefit", "delivery_subsidy"), ("department", "市卫生健康委员会")]),
    ("孩他爸想休护理假", [("applicant_role", "father"), ("benefit", "paternity_leave")]),
    ("去年3月15日生的", [("date", "去年3月15日")]),
    ("孩子今年4岁", [("child_age", "4岁")]),
])
def test_ruler_finds_closed_class_entities_dates_and_ages(nlp, text, expected):
    assert ents(nlp, text) == expected


def test_every_pattern_value_is_canonical(kb):
    valid = valid_values(kb)
    for pattern in build_patterns(kb, ROOT / "data" / "nlu" / "synonyms.yml"):
        if "id" in pattern:
            assert pattern["id"] in valid[pattern["label"]], pattern


def test_merge_prefers_the_ruler_span_and_drops_invalid_closed_values():
    valid = {"applicant_role": ["mother", "father"], "benefit": ["delivery_subsidy"]}
    diet = [{"entity": "applicant_role", "value": "他妈", "start": 2, "end": 4},
            {"entity": "benefit", "value": "交流", "start": 10, "end": 12},
            {"entity": "date", "value": "去年", "start": 20, "end": 22}]
    ruler = [{"entity": "applicant_role", "value": "mother", "start": 0, "end": 4}]
    assert merge(diet, ruler, valid) == [ruler[0], diet[2]]


def test_component_trains_persists_and_loads_without_knowledge(tmp_path):
    storage = LocalModelStorage(tmp_path)
    resource = Resource("ruler")
    context = ExecutionContext(GraphSchema({}), "test")
    example = Message(data={TEXT: "家住薛家湾准格尔", "intent": "inform",
                            ENTITIES: [{"entity": "banner", "value": "准格尔旗", "start": 5, "end": 8}]})
    trained = PolicyEntityRuler.create({}, storage, resource, context)
    trained.train(TrainingData([example]))
    loaded = PolicyEntityRuler.load({}, storage, resource, context)
    message = Message(data={TEXT: "俺是孩子他妈，在准格尔住",
                            ENTITIES: [{"entity": "applicant_role", "value": "他妈", "start": 4, "end": 6,
                                        "extractor": "DIETClassifier"}]})
    loaded.process([message])
    assert [(e["entity"], e["value"], e["extractor"]) for e in message.get(ENTITIES)] == [
        ("applicant_role", "mother", "PolicyEntityRuler"), ("banner", "准格尔旗", "PolicyEntityRuler")]


def test_untrained_component_leaves_messages_alone(tmp_path):
    component = PolicyEntityRuler.load({}, LocalModelStorage(tmp_path), Resource("none"),
                                       ExecutionContext(GraphSchema({}), "test"))
    message = Message(data={TEXT: "分娩补贴", ENTITIES: []})
    component.process([message])
    assert message.get(ENTITIES) == []
