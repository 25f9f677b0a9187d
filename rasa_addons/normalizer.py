"""First NLU component: normalise what citizens type before tokenising.

Traditional to simplified, full-width to half-width, emoji, control
characters and lone surrogates to spaces, and a length cap. Offsets are
preserved (one character in, one character out) so entity annotations in
training data stay aligned. At prediction time personal data is masked after
normalising, so the text Rasa stores as `parse_data.text` never holds an ID,
phone or card number in clear, whichever way it reached the model.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Text

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.text import mask_personal_data, normalize_keep_offsets


@DefaultV1Recipe.register([DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER], is_trainable=False)
class TextNormalizer(GraphComponent):
    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"max_chars": 500}

    def __init__(self, config: Dict[Text, Any]) -> None:
        self.max_chars = int(config.get("max_chars", 500))

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "TextNormalizer":
        return cls(config)

    def _normalise(self, message: Message, keep_length: bool) -> None:
        text: Optional[Text] = message.get(TEXT)
        if not text:
            return
        new = normalize_keep_offsets(text)
        if keep_length:
            if len(new) == len(text):
                message.set(TEXT, new)
        else:
            message.set(TEXT, mask_personal_data(new)[: self.max_chars])

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        for example in training_data.training_examples:
            self._normalise(example, keep_length=True)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            self._normalise(message, keep_length=False)
        return messages
