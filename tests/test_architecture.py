"""The shape of the code: no import cycles, and the rooms import in one direction only.

Reads the imports of every module (ast; imports inside functions included, imports under
``if TYPE_CHECKING:`` left out) of
chimevoice, sip_rules and lambda_bridge and checks the rules of docs/architecture.md.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("chimevoice", "sip_rules", "lambda_bridge")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def imports_of(path: Path, name: str) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(nodes: list[ast.stmt]) -> None:
        for node in nodes:
            if isinstance(node, ast.If) and _type_checking(node):
                continue
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                # "from X import y": module X.y when it is one, else X (resolved in graph())
                found.update(f"{target}.{alias.name}" for alias in node.names)
            for field in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, field, None)
                if isinstance(inner, list):                # function bodies too: lazy imports count
                    visit([n for n in inner if isinstance(n, ast.stmt)])
                if field == "handlers" and isinstance(inner, list):
                    for handler in inner:
                        visit(handler.body)

    visit(tree.body)
    return found


def graph() -> dict[str, set[str]]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    names = {module_name(p): p for p in files}
    out: dict[str, set[str]] = {}
    for name, path in names.items():
        deps = set()
        for imp in imports_of(path, name):
            while imp and imp not in names:
                imp = imp.rpartition(".")[0]
            if imp and imp != name:
                deps.add(imp)
        out[name] = deps
    return out


def find_cycle(g: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def dfs(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(g.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state:
                found = dfs(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(g):
        if n not in state:
            found = dfs(n)
            if found:
                return found
    return None


def test_no_import_cycles():
    assert find_cycle(graph()) is None


def test_a_package_that_imports_itself_in_a_loop_is_found():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


def test_the_engine_imports_only_itself():
    g = graph()
    for name, deps in g.items():
        if name.startswith("chimevoice.engine"):
            outside = {d for d in deps if not d.startswith("chimevoice.engine")}
            assert not outside, (name, outside)


def test_actions_are_plugins_of_the_engine():
    """actions/ imports engine/ (and media/speech/bots helpers), never the driver or SIP;
    nothing below the driver imports actions/ except the driver's wiring."""
    g = graph()
    for name, deps in g.items():
        if name.startswith("chimevoice.actions"):
            assert not {d for d in deps if d.startswith(("chimevoice.calls", "chimevoice.sip", "chimevoice.api"))}, name
        if name.startswith(("chimevoice.engine", "chimevoice.media", "chimevoice.sip", "sip_rules")):
            assert not {d for d in deps if d.startswith("chimevoice.actions")}, name


def test_only_the_sip_endpoint_imports_pjsua2():
    users = [module_name(p) for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
             if "pjsua2" in imports_of(p, module_name(p))]
    # chimevoice.testphone is the test caller (`chimevoice call`): a pjsua2 process of its own, never the daemon's
    # (chimevoice.caller loads chimevoice.testphone's pjsua2 only when `chimevoice call` runs)
    assert sorted(users) == ["chimevoice.caller", "chimevoice.sip.endpoint", "chimevoice.testphone"], users
