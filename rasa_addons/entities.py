"""Rule-based entities with spaCy, merged with those of any extractor before it
(DIET in configurations that have it; config.yml has none, so the ruler's are all).

A blank spaCy Chinese pipeline (one token per character, nothing downloaded)
with an EntityRuler whose patterns are built at training time from knowledge/
and the NLU data (bot/entity_patterns.py): banners, departments, benefits,
child order, children count, hukou, applicant role, dates and ages. The
patterns and the canonical values are saved in the Rasa model, so a trained
model needs neither knowledge/ nor a spaCy model package where it runs.

Runs after EntitySynonymMapper (and DIET, where a configuration has it), and merges:
- a ruler entity wins over any DIET entity whose span overlaps it (the ruler's
  spans come from the vocabulary, DIET sometimes cuts 孩子他妈 to 他妈);
- a DIET entity of a closed class whose value is not one of that class's
  canonical values (e.g. benefit "交流") is dropped: no slot can use it;
- everything else DIET found is kept (it generalises to unseen phrasings).
"""
from __future__ import annotations

import json
import logging
from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

log = logging.getLogger(__name__)
EXTRACTOR = "PolicyEntityRuler"


def build_nlp(patterns: List[dict]):
    import spacy

    nlp = spacy.blank("zh")  # default segmenter: one token per character
    ruler = nlp.add_pipe("entity_ruler", config={"overwrite_ents": True})
    ruler.add_patterns(patterns)
    return nlp


def overlaps(a: Dict[Text, Any], b: Dict[Text, Any]) -> bool:
    return a["start"] < b["end"] and b["start"] < a["end"]


def merge(diet: List[Dict[Text, Any]], ruler: List[Dict[Text, Any]],
          valid: Dict[Text, List[Text]]) -> List[Dict[Text, Any]]:
    kept = []
    for entity in diet:
        name, value = entity.get("entity"), str(entity.get("value"))
        if name in valid and value not in valid[name]:
            continue
        if "start" in entity and any(overlaps(entity, r) for r in ruler):
            continue
        kept.append(entity)
    return sorted(kept + ruler, key=lambda e: (e.get("start", -1), e.get("end", -1)))


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR], is_trainable=True)
class PolicyEntityRuler(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {}

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 patterns: Optional[List[dict]] = None, valid: Optional[Dict[Text, List[Text]]] = None) -> None:
        self.config = {**self.get_default_config(), **config}
        self._storage, self._resource = model_storage, resource
        self.patterns, self.valid = patterns, valid or {}
        self.nlp = build_nlp(patterns) if patterns else None

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "PolicyEntityRuler":
        return cls(config, model_storage, resource)

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "PolicyEntityRuler":
        try:
            with model_storage.read_from(resource) as folder:
                saved = json.loads((folder / "entity_ruler.json").read_text(encoding="utf-8"))
        except (ValueError, FileNotFoundError):
            log.warning("PolicyEntityRuler has no trained patterns; it will not extract")
            return cls(config, model_storage, resource)
        return cls(config, model_storage, resource, saved["patterns"], saved["valid"])

    def train(self, training_data: TrainingData) -> Resource:
        from bot.config import ROOT
        from bot.entity_patterns import build_patterns, valid_values
        from bot.knowledge import get_knowledge

        kb = get_knowledge()
        valid = valid_values(kb)
        annotated = []
        for message in training_data.entity_examples:
            text = message.get(TEXT) or ""
            for e in message.get(ENTITIES) or []:
                value = str(training_data.entity_synonyms.get(str(e.get("value")), e.get("value")))
                if e["entity"] in valid and value in valid[e["entity"]]:
                    annotated.append((e["entity"], text[e["start"]:e["end"]], value))
        self.patterns = build_patterns(kb, ROOT / "data" / "nlu" / "synonyms.yml", annotated)
        self.valid = valid
        self.nlp = build_nlp(self.patterns)
        with self._storage.write_to(self._resource) as folder:
            (folder / "entity_ruler.json").write_text(
                json.dumps({"patterns": self.patterns, "valid": self.valid}, ensure_ascii=False), encoding="utf-8")
        return self._resource

    def extract(self, text: Text) -> List[Dict[Text, Any]]:
        if not self.nlp or not text:
            return []
        return [{"entity": ent.label_, "value": ent.ent_id_ or ent.text, "start": ent.start_char,
                 "end": ent.end_char, "confidence_entity": 1.0, "extractor": EXTRACTOR}
                for ent in self.nlp(text).ents]

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            text = message.get(TEXT)
            if not self.nlp or not text:
                continue
            merged = merge(message.get(ENTITIES) or [], self.extract(text), self.valid)
            message.set(ENTITIES, merged, add_to_output=True)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        return training_data
