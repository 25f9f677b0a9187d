"""The REST channel and the NLU normaliser: what Rasa stores is masked, and odd
text (lone surrogates, control characters) never makes them fail."""
import itertools
from pathlib import Path

import pytest
import yaml
from rasa.shared.nlu.training_data.message import Message
from sanic import Sanic

from rasa_addons.channels import SafeRestInput, masked_metadata
from rasa_addons.normalizer import TextNormalizer

ROOT = Path(__file__).resolve().parent.parent
_apps = itertools.count()


@pytest.fixture
def channel():
    """A Sanic app with the REST channel; `seen` collects what Rasa would receive."""
    seen = []

    async def on_new_message(message):
        seen.append(message)
        await message.output_channel.send_text_message(message.sender_id, "好的")

    app = Sanic(f"rest_channel_test_{next(_apps)}")
    app.blueprint(SafeRestInput().blueprint(on_new_message), url_prefix="/webhooks/rest")
    return app, seen


def post(app, body):
    _, resp = app.test_client.post("/webhooks/rest/webhook", json=body)
    return resp


def test_nlu_normaliser_masks_after_normalising():
    # The NLU turns full-width digits into ASCII: masking before that stored
    # this number in clear as parse_data.text.
    message = Message(data={"text": "我电话１３８１２３４５６７８，身份证１５０６０２１９９００１０１１２３４"})
    TextNormalizer({}).process([message])
    assert message.get("text") == "我电话138****5678,身份证150***********1234"


def test_nlu_normaliser_takes_lone_surrogates_and_control_characters():
    message = Message(data={"text": "育儿假\ud800几天\x00？"})
    TextNormalizer({}).process([message])
    assert message.get("text") == "育儿假 几天 ?"
    message.get("text").encode("utf-8")
    replaced = Message(data={"text": "育儿假\ufffd几天"})   # as the REST channel passes it on
    TextNormalizer({}).process([replaced])
    assert replaced.get("text") == "育儿假 几天"


def test_nlu_normaliser_leaves_training_data_alone():
    from rasa.shared.nlu.training_data.training_data import TrainingData

    example = Message(data={"text": "我电话１３８１２３４５６７８", "intent": "x"})
    TextNormalizer({}).process_training_data(TrainingData([example]))
    assert example.get("text") == "我电话13812345678"


def test_rest_channel_masks_text_after_normalising(channel):
    app, seen = channel
    resp = post(app, {"sender": "citizen-1", "message": "电话１３８１２３４５６７８，邮箱zhang@example.com"})
    assert resp.status == 200 and resp.json == [{"recipient_id": "citizen-1", "text": "好的"}]
    assert seen[0].text == "电话138****5678，邮箱z****@example.com"


def test_rest_channel_masks_metadata(channel):
    app, seen = channel
    post(app, {"sender": "citizen-1", "message": "你好",
               "metadata": {"phone": "13912345678", "id": 150602199001011234, "page": "/policy",
                            "nested": [{"mail": "zhang@example.com"}]}})
    assert seen[0].metadata == {"phone": "139****5678", "id": "150***********1234", "page": "/policy",
                                "nested": [{"mail": "z****@example.com"}]}


@pytest.mark.parametrize("metadata", [
    {"a": {"b": {"c": {"d": {"e": {"f": "13912345678"}}}}}},   # too deep
    {"blob": "长" * 5000},                                      # too large
    ["13912345678"],                                           # not an object
    "13912345678",
])
def test_rest_channel_drops_metadata_it_cannot_keep_small(channel, metadata):
    app, seen = channel
    assert post(app, {"sender": "citizen-1", "message": "你好", "metadata": metadata}).status == 200
    assert seen[0].metadata is None


def test_masked_metadata_keeps_ordinary_values():
    assert masked_metadata({"lang": "zh", "count": 3, "ok": True, "score": 0.5, "none": None}) == \
        {"lang": "zh", "count": 3, "ok": True, "score": 0.5, "none": None}


def test_rest_channel_replaces_lone_surrogates(channel):
    app, seen = channel
    resp = post(app, {"sender": "citizen-1", "message": "育儿假\ud800几天\x00吗"})
    assert resp.status == 200
    assert seen[0].text == "育儿假\ufffd几天 吗"


@pytest.mark.parametrize("sender", ["citizen\x00", "citizen\ud800", "", "   ", 42, "x" * 129])
def test_rest_channel_refuses_unusable_senders(channel, sender):
    app, seen = channel
    assert post(app, {"sender": sender, "message": "你好"}).status == 400
    assert seen == []


def test_rest_channel_passes_the_clients_message_id_on(channel):
    app, seen = channel
    post(app, {"sender": "citizen-1", "message": "产假几天", "message_id": "1764500000000-9f3a6c"})
    post(app, {"sender": "citizen-1", "message": "产假几天"})
    assert seen[0].message_id == "1764500000000-9f3a6c"
    assert seen[1].message_id and seen[1].message_id != seen[0].message_id  # Rasa's own when none is sent


@pytest.mark.parametrize("message_id", ["short", "x" * 65, "含中文的编号12345", "a b c d e f g h", 12345678, ["x"]])
def test_rest_channel_refuses_unusable_message_ids(channel, message_id):
    app, seen = channel
    resp = post(app, {"sender": "citizen-1", "message": "你好", "message_id": message_id})
    assert resp.status == 400 and "message_id" in resp.json["error"]
    assert seen == []


def test_rest_channel_reads_a_leading_slash_as_text(channel):
    app, seen = channel
    post(app, {"sender": "citizen-1", "message": "  /restart"})
    assert seen[0].text == "／restart"


def test_only_the_rest_channel_is_configured():
    # Nothing in the product uses socket.io (the widget talks to the web app);
    # an open socket.io channel let anyone post into any conversation.
    credentials = yaml.safe_load((ROOT / "credentials.yml").read_text(encoding="utf-8"))
    assert list(credentials) == ["rasa_addons.channels.SafeRestInput"]
    import rasa_addons.channels as channels

    assert not any("socket" in name.lower() for name in dir(channels))


def test_custom_data_stays_on_its_message():
    import asyncio

    from rasa_addons.channels import WholeMessageCollector

    collector = WholeMessageCollector()
    message = {"text": "育儿假……", "buttons": [{"title": "有帮助", "payload": "有帮助"}],
               "custom": {"kind": "answer", "clauses": ["2.4.1"]}}
    asyncio.run(collector.send_response("someone", dict(message)))
    assert collector.messages == [{"recipient_id": "someone", **message}]


def test_a_failed_conversation_store_is_reported_to_the_channel():
    import time as _time

    from rasa_addons.channels import conversation_store_failed
    from rasa_addons.tracker_store import record_failure

    started = _time.monotonic()
    assert not conversation_store_failed("store-test", started)
    record_failure("store-test")
    assert conversation_store_failed("store-test", started)
    assert not conversation_store_failed("store-test", _time.monotonic() + 1)
