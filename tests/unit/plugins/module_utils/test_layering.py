"""module_utils is layered by domain: ``common`` at the bottom, ``allocations`` on it, ``jobs`` and ``nodes`` on top.

Imports only go down (or stay inside their own folder), so a newcomer can read the floors bottom-up and a new kind
of object never pulls the rest in a cycle.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = "ansible_collections.nomadops.nomad.plugins.module_utils"
MODULE_UTILS = Path(__file__).resolve().parents[4] / "plugins" / "module_utils"
FLOORS = {"common": 0, "allocations": 1, "jobs": 2, "nodes": 2}


def collection_imports(path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(PACKAGE + "."):
            yield node.module[len(PACKAGE) + 1:]
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith(PACKAGE + "."):
                    yield alias.name[len(PACKAGE) + 1:]


def sources():
    return sorted(path for path in MODULE_UTILS.rglob("*.py") if path.name != "__init__.py")


def test_every_file_lives_in_a_domain_folder():
    assert sources(), MODULE_UTILS
    outside = [path.name for path in sources() if path.parent.name not in FLOORS]
    assert outside == []


@pytest.mark.parametrize("path", sources(), ids=lambda path: f"{path.parent.name}/{path.name}")
def test_imports_only_go_down(path):
    own = path.parent.name
    upward = [name for name in collection_imports(path)
              if name.split(".")[0] != own and FLOORS[name.split(".")[0]] >= FLOORS[own]]
    assert upward == []
