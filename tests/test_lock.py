"""requirements.lock agrees with pyproject.toml: every dependency (and the
[test] extra) is in the lock at a version its specifier allows (the exact one
where pyproject pins it), and every locked package carries hashes.

When this fails after a dependency change, run `make lock` (scripts/lock.sh).
"""
from __future__ import annotations

import re

import pytest
import tomli
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from bot.config import ROOT

LOCK = ROOT / "requirements.lock"


def parse_lock(text: str) -> dict[str, dict]:
    """{canonical name: {"version", "hashes"}} from a pip-compile --generate-hashes file."""
    # Continuation lines ("\" at the end) belong to the requirement above them.
    logical = re.sub(r"\\\n\s*", " ", text)
    locked: dict[str, dict] = {}
    for line in logical.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith(("#", "-")):
            continue
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;]+)", line)
        assert m, f"requirements.lock: not an exact pin: {line[:80]}"
        locked[canonicalize_name(m.group(1))] = {"version": m.group(2),
                                                  "hashes": re.findall(r"--hash=sha256:[0-9a-f]{64}", line)}
    return locked


def declared() -> list[Requirement]:
    project = tomli.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]


@pytest.fixture(scope="module")
def locked():
    assert LOCK.exists(), "requirements.lock is missing: run `make lock`"
    return parse_lock(LOCK.read_text(encoding="utf-8"))


@pytest.mark.parametrize("req", declared(), ids=str)
def test_every_declared_dependency_is_locked_at_an_allowed_version(locked, req):
    name = canonicalize_name(req.name)
    pin = locked.get(name)
    assert pin, f"{req} is in pyproject.toml but not in requirements.lock: run `make lock`"
    version = pin["version"]
    assert req.specifier.contains(version, prereleases=True), (
        f"pyproject.toml wants {req}, requirements.lock has {version}: run `make lock`")
    exact = [s.version for s in req.specifier if s.operator == "=="]
    assert not exact or exact == [version]


def test_every_locked_package_has_hashes(locked):
    assert len(locked) > 100  # the whole environment, not only the direct dependencies
    missing = [name for name, pin in locked.items() if not pin["hashes"]]
    assert not missing, f"locked without hashes: {missing}"


def test_the_lock_reader_sees_a_mismatch():
    lock = parse_lock("rasa==3.6.20 \\\n    --hash=sha256:" + "a" * 64 + "\n    # via x\npyyaml==6.0.1 \\\n"
                      "    --hash=sha256:" + "b" * 64 + "\n")
    assert lock == {"rasa": {"version": "3.6.20", "hashes": ["--hash=sha256:" + "a" * 64]},
                    "pyyaml": {"version": "6.0.1", "hashes": ["--hash=sha256:" + "b" * 64]}}
    assert not Requirement("rasa[spacy]==3.6.21").specifier.contains(lock["rasa"]["version"])
    assert Requirement("PyYAML>=6,<7").specifier.contains(lock["pyyaml"]["version"])
