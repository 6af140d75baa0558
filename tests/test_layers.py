"""The layering of realtime/ (its __init__ docstring draws it), checked on the import statements
themselves — module-level and inside functions — with `ast`, so that it holds in CI rather than
in a document (import-linter would do the same with a dependency and a config file; these three
rules are a page of Python):

1. imports go only downward: run/ → web/ ∥ ws/ → services/ → fanout/ → the top-level leaves →
   protocol/, storage/; web/ and ws/ never import each other; the top-level leaves import no
   subpackage;
2. nothing imports run/ except the entry point (realtime/__main__.py);
3. protocol/ and storage/ never import realtime/, nor each other.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Higher may import lower; equal ranks only within one package (web and ws share a rank, apart).
RANK = {"run": 5, "web": 4, "ws": 4, "services": 3, "fanout": 2, "leaf": 1}


def imports_of(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, absolute module) of every import in the file, relative ones resolved."""
    package = module.split(".")[:-1] if path.name != "__init__.py" else module.split(".")
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if node.module is None:  # `from . import api`: each name is a module
                found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
    return found


def modules(top: Path, name: str) -> dict[str, Path]:
    out = {}
    for path in sorted((top / name).rglob("*.py")):
        rel = path.relative_to(top).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def layer(module: str) -> str | None:
    """'realtime.services.chat' -> 'services'; a top-level leaf -> 'leaf'; outside realtime -> None."""
    parts = module.split(".")
    if parts[0] != "realtime":
        return None
    if len(parts) > 1 and parts[1] in RANK:
        return parts[1]
    return "leaf"


def violations(top: Path) -> list[str]:
    """Every import in `top`'s realtime/, protocol/ and storage/ that breaks a rule, as 'file:line: why'."""
    bad = []
    for package in ("realtime", "protocol", "storage"):
        for module, path in modules(top, package).items():
            where = layer(module)
            for line, target in imports_of(path, module):
                at = f"{path.relative_to(top)}:{line}: {module} imports {target}"
                head = target.split(".")[0]
                if package in ("protocol", "storage"):
                    if head == "realtime" or (head in ("protocol", "storage") and head != package):
                        bad.append(f"{at} (protocol/ and storage/ import neither realtime/ nor each other)")
                    continue
                to = layer(target)
                if to is None or module in ("realtime", "realtime.__main__"):
                    continue
                if to == "run" and where != "run":
                    bad.append(f"{at} (nothing imports run/ but the entry point)")
                elif where == "leaf" and to != "leaf":
                    bad.append(f"{at} (the top-level leaves import no subpackage)")
                elif where != "leaf" and to != where and RANK[to] >= RANK[where]:
                    bad.append(f"{at} ({where}/ may import only what is below it)")
    return bad


def test_realtime_protocol_and_storage_import_only_downward():
    assert violations(ROOT) == []


def test_the_top_of_realtime_holds_only_small_leaves():
    top = sorted(p.name for p in (ROOT / "realtime").glob("*.py"))
    assert len(top) <= 8, top


def test_every_subpackage_says_what_it_may_import():
    for init in (ROOT / "realtime").glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "may import" in doc.lower(), init


def _tree(tmp: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp


def test_the_check_catches_upward_across_and_run_imports_and_lets_downward_ones_pass(tmp_path):
    top = _tree(tmp_path, {
        "realtime/__init__.py": "", "realtime/__main__.py": "from .run.cli import main\n",
        "realtime/policy.py": "from protocol import x\n",
        "realtime/errors.py": "from .fanout import hub\n",  # a leaf reaching up
        "realtime/fanout/__init__.py": "", "realtime/fanout/hub.py": "from ..policy import y\n",
        "realtime/fanout/directory.py": "def f():\n    from ..services.chat import Chat\n",  # lazy, upward
        "realtime/services/__init__.py": "", "realtime/services/chat.py": "from ..fanout.hub import Hub\n",
        "realtime/web/__init__.py": "", "realtime/web/api.py": "from ..ws.session import welcome\n",  # across
        "realtime/ws/__init__.py": "", "realtime/ws/session.py": "from ..services import chat\n",
        "realtime/run/__init__.py": "", "realtime/run/cli.py": "from ..web import api\n",
        "realtime/services/bundle.py": "from ..run.assemble import x\n",  # into run/
        "protocol/__init__.py": "", "protocol/codec.py": "import realtime.policy\n",
        "storage/__init__.py": "", "storage/db.py": "from protocol import frames\n",
    })
    found = "\n".join(violations(top))
    assert "realtime/errors.py:1" in found
    assert "realtime/fanout/directory.py:2" in found
    assert "realtime/web/api.py:1" in found
    assert "realtime/services/bundle.py:1" in found and "run/" in found
    assert "protocol/codec.py:1" in found and "storage/db.py:1" in found
    assert len(violations(top)) == 6, found
