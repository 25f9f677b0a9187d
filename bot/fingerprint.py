"""Code fingerprints of the project's own NLU components, for training.

Rasa caches a trained component by the fingerprint of its config and of its
inputs, not of its code; `scripts/train.sh` therefore writes each of our
components' fingerprint into the training config. A component's fingerprint
covers its module, the project modules it imports (transitively, also imports
inside functions) and, when it reads knowledge/, the knowledge files. So a
change to one component retrains it and what runs after it, and a change to
serving code (tracker store, channels), which no component imports, retrains
nothing.
"""
from __future__ import annotations

import ast
import hashlib
from pathlib import Path

from .config import ROOT

PACKAGES = ("bot", "rasa_addons")


def _module_file(module: str, root: Path) -> Path | None:
    path = root.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_modules(path: Path, root: Path) -> set[str]:
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(p for p in parts + [base] if p)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return {m for m in found if m.split(".")[0] in PACKAGES}


def code_files(module: str, root: Path = ROOT) -> list[Path]:
    """The project files a module depends on: itself and what it imports, transitively.

    Package __init__ files are not followed (rasa_addons/__init__ installs the
    serving fixes, which training does not use)."""
    todo, seen = [module], {}
    while todo:
        name = todo.pop()
        path = _module_file(name, root)
        if path is None or path in seen.values() or path.name == "__init__.py":
            continue
        seen[name] = path
        todo.extend(_imported_modules(path, root))
    return sorted(seen.values())


def component_fingerprint(component: str, root: Path = ROOT) -> str:
    """Fingerprint for a pipeline component named `package.module.Class`."""
    files = code_files(component.rsplit(".", 1)[0], root)
    if root / "bot" / "knowledge.py" in files:
        files += sorted(p for p in (root / "knowledge").rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for path in files:
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def write_training_config(source: Path, dest: Path) -> None:
    """The config Rasa trains with: `source` with each of our components' code fingerprint."""
    import yaml

    config = yaml.safe_load(source.read_text(encoding="utf-8"))
    for component in config["pipeline"]:
        if component["name"].startswith("rasa_addons."):
            component["code_fingerprint"] = component_fingerprint(component["name"])
    with open(dest, "w", encoding="utf-8") as fh:
        fh.write(f"# Generated from {source.name} with each component's code fingerprint. Do not edit.\n")
        yaml.safe_dump(config, fh, allow_unicode=True, sort_keys=False)
