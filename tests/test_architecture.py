"""The dependency rules of docs/architecture.md, checked over the source tree.

Every import of one of tanya's modules counts, also one inside a function (those keep start-up light, but
a cycle through them is still a cycle), and every import inside a function says why it is there. The
checks read the files with ``ast``: nothing is imported.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("storage", "retrieval", "alignment", "bot")
# Why an import may sit inside a function (docs/architecture.md): the one word of its trailing comment.
IMPORT_REASONS = {"heavy", "optional"}

# Which area may import which (an area may always import itself). The first matching prefix decides.
ALLOWED: dict[str, set[str]] = {
    "storage": set(),
    "retrieval.lazy_exports": set(),
    "retrieval.config": {"retrieval.lazy_exports"},
    "retrieval.stores": {"retrieval.config", "retrieval.lazy_exports"},
    "retrieval.search": {"retrieval.config", "retrieval.stores", "retrieval.lazy_exports"},
    "retrieval.ingestion": {
        "retrieval.config",
        "retrieval.search",
        "retrieval.stores",
        "retrieval.lazy_exports",
    },
    "retrieval.generation": {"retrieval.lazy_exports"},
    "retrieval.answering": {"retrieval.lazy_exports"},
    "retrieval": {"retrieval"},  # the package itself re-exports from every stage
    "alignment": {"storage", "retrieval.answering", "retrieval.generation"},
    "bot.settings": set(),
    "bot.observability": {"bot.settings", "storage", "alignment"},
    "bot.slack": {
        "bot.settings",
        "bot.observability",
        "bot.service",
        "bot.errors",
        "bot.training",
        "bot.adapter_sync",
        "bot.outbox",
        "storage",
        "retrieval",
        "alignment",
    },
    "bot.cli": {
        "bot.settings",
        "bot.observability",
        "bot.service",
        "bot.errors",
        "bot.training",
        "bot.base_model",
        "bot.adapter_sync",
        "bot.slack",
        "storage",
        "retrieval",
        "alignment",
    },
    "bot.train_launch": {
        "bot.cli.application",
        "bot.service",
        "bot.settings",
        "bot.training",
        "storage",
        "alignment",
    },
    "bot": {
        "bot.settings",
        "bot.observability",
        "bot.service",
        "bot.errors",
        "bot.training",
        "bot.base_model",
        "bot.adapter_sync",
        "bot.outbox",
        "storage",
        "retrieval",
        "alignment",
    },
}


def _sources() -> list[Path]:
    return [
        path
        for package in PACKAGES
        for path in (REPO / package).rglob("*.py")
        if "migrations" not in path.parts
    ]


def _module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[tuple[str, tuple[str, ...]]]]:
    """Module → the (imported module, imported names) of tanya's own modules it imports."""
    found: dict[str, set[tuple[str, tuple[str, ...]]]] = defaultdict(set)
    for path in _sources():
        module = _module_name(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [(alias.name, ()) for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [(node.module, tuple(alias.name for alias in node.names))]
            else:
                continue
            for target, names in targets:
                if target.split(".")[0] in PACKAGES:
                    found[module].add((target, names))
    return found


def _area(module: str) -> str:
    return max((key for key in ALLOWED if module == key or module.startswith(key + ".")), key=len)


def _is_module(name: str) -> bool:
    base = REPO / name.replace(".", "/")
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _resolve(target: str, names: tuple[str, ...]) -> set[str]:
    """The modules an import loads: ``from pkg import sub`` loads ``pkg.sub`` when that is a module."""
    submodules = {f"{target}.{name}" for name in names if _is_module(f"{target}.{name}")}
    return submodules or {target}


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, targets in _imports().items():
        for target, names in targets:
            graph[module] |= {name for name in _resolve(target, names) if name != module}
    return graph


def test_every_import_points_the_allowed_way() -> None:
    wrong = []
    for module, targets in sorted(_graph().items()):
        area = _area(module)
        for target in sorted(targets):
            allowed = ALLOWED[area] | {area}
            if not any(target == a or target.startswith(a + ".") for a in allowed):
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports against docs/architecture.md:\n" + "\n".join(wrong)


def test_there_is_no_import_cycle() -> None:
    graph = _graph()
    # Package __init__ files that only re-export lazily are edges to their children; leave them out.
    parents = {module for module in graph if (REPO / module.replace(".", "/") / "__init__.py").is_file()}
    edges = {m: {t for t in ts if t not in parents} for m, ts in graph.items() if m not in parents}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*trail[trail.index(nxt) :], nxt] if nxt in trail else [node, nxt])
            elif nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(cycle) for cycle in cycles)


def test_no_module_reaches_into_another_modules_private_names() -> None:
    private = sorted(
        f"{module} imports {name} from {target}"
        for module, targets in _imports().items()
        for target, names in targets
        for name in names
        if name.startswith("_") and target != module
    )
    assert not private, "\n".join(private)


def _imports_in_functions() -> list[tuple[str, int, str]]:
    """(file, line, trailing comment) of every import statement inside a function."""
    found = []
    for path in _sources():
        lines = path.read_text(encoding="utf-8").splitlines()
        for function in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    line = lines[node.lineno - 1]
                    comment = line.partition("#")[2].strip() if "#" in line else ""
                    found.append((str(path.relative_to(REPO)), node.lineno, comment))
    return found


def test_every_import_inside_a_function_says_why_in_a_word() -> None:
    """Start-up stays light only while the imports kept inside functions are the ones that need to be."""
    found = _imports_in_functions()
    unexplained = [
        f"{path}:{line}: '# {comment}'" if comment else f"{path}:{line}: no reason"
        for path, line, comment in found
        if comment not in IMPORT_REASONS
    ]
    assert found, "the check found no import inside a function"
    assert not unexplained, (
        f"an import inside a function needs a trailing comment, one of {sorted(IMPORT_REASONS)} "
        "(docs/architecture.md), or belongs at the top of its module:\n" + "\n".join(unexplained)
    )


@pytest.mark.parametrize(
    ("module", "target"),
    [
        ("retrieval.answering.pipeline", "retrieval.answering.checks"),
        ("alignment.answer_quality", "retrieval.answering.checks"),
        ("bot.cli.training", "alignment.registry"),  # imported inside a function
    ],
)
def test_the_check_sees_the_imports_it_guards(module: str, target: str) -> None:
    """A guard against a check that passes because it reads nothing."""
    assert target in _graph()[module]
