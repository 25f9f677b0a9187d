"""Component code fingerprints: what retrains when which file changes."""
import shutil
from pathlib import Path

import pytest

from bot.fingerprint import code_files, component_fingerprint

ROOT = Path(__file__).resolve().parents[1]
COMPONENTS = ["rasa_addons.normalizer.TextNormalizer", "rasa_addons.classifier.PolicyIntentClassifier",
              "rasa_addons.entities.PolicyEntityRuler"]


@pytest.fixture()
def tree(tmp_path):
    for folder in ("bot", "rasa_addons", "knowledge"):
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__", "web"))
    return tmp_path


def fingerprints(root):
    return {c.split(".")[1]: component_fingerprint(c, root) for c in COMPONENTS}


def touch(path: Path):
    path.write_text(path.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")


def test_every_component_in_the_config_is_fingerprinted_from_its_imports():
    import yaml

    names = [c["name"] for c in yaml.safe_load((ROOT / "config.yml").read_text(encoding="utf-8"))["pipeline"]]
    assert sorted(n for n in names if n.startswith("rasa_addons.")) == sorted(COMPONENTS)
    files = {p.relative_to(ROOT).as_posix() for p in code_files("rasa_addons.classifier")}
    # Imports at the top and inside functions (train) are both followed.
    assert {"rasa_addons/classifier.py", "bot/search.py", "bot/text.py", "bot/lexicon.py", "bot/knowledge.py"} <= files
    assert "rasa_addons/serving.py" not in files and "rasa_addons/__init__.py" not in files


@pytest.mark.parametrize("changed, retrained", [
    ("rasa_addons/serving.py", set()),
    ("rasa_addons/channels.py", set()),
    ("rasa_addons/classifier.py", {"classifier"}),
    ("bot/text.py", {"normalizer", "classifier"}),
    ("bot/entity_patterns.py", {"entities"}),
    ("knowledge/answers.yml", {"classifier", "entities"}),
])
def test_a_change_retrains_only_the_components_that_use_it(tree, changed, retrained):
    before = fingerprints(tree)
    touch(tree / changed)
    after = fingerprints(tree)
    assert {name for name in before if before[name] != after[name]} == retrained
    assert fingerprints(tree) == after  # stable
