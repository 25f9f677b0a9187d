"""The Rasa project stays in step with knowledge/: every answer reachable,
every fact a slot with a question, generated files up to date."""
import re
from pathlib import Path

import yaml

from bot import build
from bot.config import ROOT

DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
INTENT_LINE = re.compile(r"^- intent: (\S+)", re.M)


def training_intents(folder: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for path in folder.glob("*.yml"):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
            if "intent" in block:
                n = sum(1 for ln in block["examples"].splitlines() if ln.strip().startswith("- "))
                counts[block["intent"]] = counts.get(block["intent"], 0) + n
    return counts


def test_every_answer_has_an_intent_with_training_and_heldout_data(kb):
    train = training_intents(ROOT / "data" / "nlu")
    heldout = training_intents(ROOT / "tests" / "nlu")
    for aid in kb.answers:
        intent = f"ask_{aid}"
        assert intent in DOMAIN["intents"], intent
        assert train.get(intent, 0) >= 30, f"{intent} has {train.get(intent, 0)} training examples"
        assert heldout.get(intent, 0) >= 5, f"{intent} has no held-out examples"


def test_every_intent_has_at_least_30_examples():
    train = training_intents(ROOT / "data" / "nlu")
    for intent in DOMAIN["intents"]:
        assert train.get(intent, 0) >= 30, f"{intent}: {train.get(intent, 0)} examples"


def _examples(folder):
    out = set()
    for path in folder.glob("*.yml"):
        for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
            if "intent" not in block:
                continue
            for ln in block["examples"].splitlines():
                if ln.strip().startswith("- "):
                    out.add(re.sub(r"\[([^\]]+)\](\{[^}]*\}|\([^)]*\))", r"\1", ln.strip()[2:]).strip())
    return out


# Held-out sets: tests/nlu (written with the training data) and tests/nlu_fresh
# (written later, from the answers only, without seeing the training data).
HELDOUT_DIRS = [ROOT / "tests" / "nlu", ROOT / "tests" / "nlu_fresh"]


def _heldout():
    return set().union(*(_examples(folder) for folder in HELDOUT_DIRS))


def test_no_training_example_is_a_near_copy_of_a_heldout_one():
    """A reworded held-out sentence in training would inflate the held-out figures.
    Short replies (under 6 characters, e.g. 不知道啊) collide naturally and are not checked."""
    from rapidfuzz import fuzz, process

    heldout = sorted(_heldout())
    near = []
    for text in sorted(_examples(ROOT / "data" / "nlu")):
        if len(text) >= 6:
            match = process.extractOne(text, heldout, scorer=fuzz.ratio, score_cutoff=85)
            if match:
                near.append((text, match[0], round(match[1])))
    assert not near, near


def test_heldout_examples_are_never_trained_on():
    assert not (_examples(ROOT / "data" / "nlu") & _heldout())


def test_every_fact_and_state_is_a_slot_set_only_by_the_dialogue(kb):
    from bot.dialogue import STATE_SLOTS

    names = [n for n in kb.input_facts() if n != "today"] + list(STATE_SLOTS)
    for name in names:
        assert name in DOMAIN["slots"], name
        # Rasa's mappings never fill them: bot/dialogue.py reads every message itself.
        assert DOMAIN["slots"][name]["mappings"] == [{"type": "custom"}], name


def test_every_intent_is_one_turn_of_action_respond():
    rules = yaml.safe_load((ROOT / "data" / "rules" / "respond.yml").read_text(encoding="utf-8"))["rules"]
    answered = {r["steps"][0]["intent"] for r in rules if r["steps"][1] == {"action": "action_respond"}}
    assert set(DOMAIN["intents"]) | {"nlu_fallback"} == answered
    assert DOMAIN["actions"] == ["action_respond"] and "forms" not in DOMAIN


def test_generated_files_are_up_to_date():
    assert build.main(["--check"]) == 0


def test_jieba_dictionary_keeps_every_entity_whole(kb):
    import jieba

    content = build.jieba_dictionary(kb, ROOT / "data" / "nlu")
    tok = jieba.Tokenizer()
    tok.initialize()
    for line in content.splitlines():
        word, freq = line.split()[:2]
        tok.add_word(word, int(freq))
    for text, spans in build.annotated_examples(ROOT / "data" / "nlu"):
        bounds = {b for _, s, e in tok.tokenize(text) for b in (s, e)}
        for s, e in spans:
            assert s in bounds and e in bounds, f"entity {text[s:e]!r} is cut in {text!r}"
