"""The engine never imports a UI library; the app starts without torch."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True, text=True, check=True,
    ).stdout
    return set(out.split())


def test_engine_imports_no_ui_library() -> None:
    mods = _modules_after("import bark_engine, bark_engine.engine, bark_engine.testing")
    assert "torch" in mods  # the check is meaningful: the pipeline really loaded
    for ui in ("textual", "rich", "sounddevice"):
        assert ui not in mods, ui


def test_cli_and_catalog_start_without_torch() -> None:
    mods = _modules_after("import bark_tui.cli.main, bark_engine.voices.catalog, bark_engine.audio")
    assert "torch" not in mods
    assert "transformers" not in mods


SERVER_LIBRARIES = ("fastapi", "uvicorn", "starlette", "pydantic", "openai")


def test_studio_and_remote_client_start_without_the_serve_extra() -> None:
    """The studio (even with a server chosen) and the CLI import no web framework:
    the remote client is stdlib HTTP, and `serve` loads FastAPI only when it runs."""
    mods = _modules_after("import bark_tui.studio.app, bark_tui.cli.main, bark_tui.remote.choice, "
                          "bark_tui.remote.engine, bark_tui.service.run")
    for lib in SERVER_LIBRARIES:
        assert lib not in mods, lib
    assert "torch" not in mods  # the studio's first screen still draws without torch


def test_the_service_app_really_imports_fastapi() -> None:
    import pytest

    pytest.importorskip("fastapi")
    mods = _modules_after("import bark_tui.service.app")
    assert "fastapi" in mods  # the check above is meaningful


FINISHING_LIBRARIES = ("soundfile", "soxr", "pyloudnorm", "scipy", "num2words", "ebooklib",
                       "av", "lxml")


def test_studio_and_cli_start_without_the_finishing_libraries() -> None:
    """Formats, loudness, resampling, number reading and books load when a file is
    finished or a book read, never at start-up (the CLI's finishing options included)."""
    mods = _modules_after("import bark_tui.studio.app, bark_tui.cli.main, bark_tui.cli.finish, "
                          "bark_tui.finish.deliver, bark_tui.text.rewrite, bark_tui.books.extract")
    for lib in FINISHING_LIBRARIES:
        assert lib not in mods, lib
    used = _modules_after("from bark_tui.text.numbers import read_numbers; "
                          "read_numbers('3', 'en')")
    assert "num2words" in used  # the check above is meaningful


def test_studio_and_cli_start_without_ray() -> None:
    """`--ray` imports Ray when a render asks for it; nothing else does."""
    mods = _modules_after("import bark_tui.studio.app, bark_tui.cli.main, bark_tui.cli.render, "
                          "bark_tui.cli.cluster, bark_tui.cluster.driver")
    assert "ray" not in mods


def _import_graph(*packages: str) -> dict[str, set[str]]:
    """Module → the project modules it imports, at the top or inside a function
    (a lazy import that closes a loop is still a loop); ``if TYPE_CHECKING:``
    blocks are left out, since nothing runs them."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    files = {}
    for package in packages:
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            files[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def runtime_nodes(tree: ast.AST):
        for node in ast.iter_child_nodes(tree):
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
                continue
            yield node
            yield from runtime_nodes(node)

    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                # `from pkg import mod` needs pkg.mod; `from pkg import name`, pkg itself
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in files else base
                           for a in node.names]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            deps.update(t for t in targets if t in files and t != name)
        graph[name] = deps
    return graph


def test_no_module_imports_itself_through_others() -> None:
    """No import cycles in the engine or the studio: each module's dependencies
    can be read (and tested) without the modules that use it."""
    graph = _import_graph("bark_engine", "bark_tui")
    assert "bark_tui.cli.args" in graph["bark_tui.cli.say"]  # the walk sees real imports
    loops = []
    for start in graph:
        seen, todo = set(), list(graph[start])
        while todo:
            module = todo.pop()
            if module == start:
                loops.append(start)
                break
            if module not in seen:
                seen.add(module)
                todo.extend(graph[module])
    assert loops == [], {m: sorted(graph[m]) for m in loops}


def test_core_imports_neither_textual_nor_torch() -> None:
    """`bark_tui.core` is what the studio and the CLI share; it loads without a UI
    library or the engine's heavy side, so both can use it at start-up."""
    from pathlib import Path

    core = Path(__file__).resolve().parents[1] / "bark_tui" / "core"
    names = sorted(p.stem for p in core.glob("*.py") if p.stem != "__init__")
    assert {"settings", "session", "locations", "facts"} <= set(names)  # the walk found them
    mods = _modules_after("import " + ", ".join(f"bark_tui.core.{n}" for n in names))
    for heavy in ("textual", "rich", "torch", "transformers"):
        assert heavy not in mods, heavy


# Role packages of the studio and what each may not import (at the top or in a function).
LAYERS = {
    # core checks a setting with the validator of the package that owns its format
    # (`remote.http.check_url`, `cluster.connect.check_address`), never the client itself
    "bark_tui.core": ("bark_tui.studio", "bark_tui.screens", "bark_tui.widgets", "bark_tui.cli",
                      "bark_tui.service", "bark_tui.remote.choice", "bark_tui.remote.engine",
                      "bark_tui.history"),
    "bark_tui.remote": ("bark_tui.studio", "bark_tui.screens", "bark_tui.widgets", "bark_tui.cli"),
    "bark_tui.studio.jobs": ("bark_tui.studio.app", "bark_tui.studio.controllers",
                             "bark_tui.screens", "bark_tui.widgets", "bark_tui.cli"),
    "bark_tui.screens": ("bark_tui.studio.controllers", "bark_tui.cli"),
    "bark_tui.widgets": ("bark_tui.studio", "bark_tui.screens", "bark_tui.cli"),
    "bark_tui.service": ("bark_tui.cli", "bark_tui.studio", "bark_tui.screens",
                         "bark_tui.widgets"),
    "bark_tui.history": ("bark_tui.studio", "bark_tui.screens", "bark_tui.widgets",
                         "bark_tui.cli"),
}


def test_each_role_imports_only_the_layers_below_it() -> None:
    """core ← studio jobs ← controllers ← app; widgets and screens never reach up into
    the controllers; only the CLI starts the studio."""
    graph = _import_graph("bark_engine", "bark_tui")
    assert "bark_tui.core.job" in graph["bark_tui.studio.jobs.queue"]  # the walk sees real imports
    broken = []
    for layer, forbidden in LAYERS.items():
        for module, deps in graph.items():
            if module == layer or module.startswith(layer + "."):
                broken += [f"{module} -> {d}" for d in deps
                           if any(d == f or d.startswith(f + ".") for f in forbidden)]
    assert broken == []


def test_every_project_import_names_a_module_that_exists() -> None:
    """Each import of a project module, lazy ones inside functions included, names a
    module or package that is there (and a name it defines): a function moved to
    another folder cannot keep a relative import that now points nowhere."""
    import ast
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    missing, checked = [], 0
    for package in ("bark_engine", "bark_tui"):
        for path in (root / package).rglob("*.py"):
            parts = list(path.relative_to(root).with_suffix("").parts)
            base_pkg = parts[:-1]
            tree = ast.parse(path.read_text(encoding="utf-8"))
            optional = {id(n) for t in ast.walk(tree) if isinstance(t, ast.Try)
                        and any("ImportError" in ast.unparse(h.type or ast.Name("")) for h
                                in t.handlers) for s in t.body for n in ast.walk(s)}
            for node in ast.walk(tree):
                if not isinstance(node, ast.ImportFrom) or id(node) in optional:
                    continue  # an optional import (a compiled kernel) may be absent
                if node.level:
                    up = base_pkg[: len(base_pkg) - (node.level - 1)]
                    if len(up) < 1:
                        missing.append(f"{path.relative_to(root)}:{node.lineno} beyond the top")
                        continue
                    module = ".".join(up + ([node.module] if node.module else []))
                elif (node.module or "").split(".")[0] in ("bark_engine", "bark_tui"):
                    module = node.module or ""
                else:
                    continue
                checked += 1
                try:
                    found = importlib.util.find_spec(module)
                except ModuleNotFoundError:  # a parent package is missing
                    found = None
                if found is None:
                    missing.append(f"{path.relative_to(root)}:{node.lineno} {module}")
                    continue
                for alias in node.names:
                    sub = f"{module}.{alias.name}"
                    target = root / Path(*module.split("."))
                    is_module = (target / f"{alias.name}.py").exists() or \
                        (target / alias.name / "__init__.py").exists()
                    if not is_module and alias.name != "*":
                        source = (target / "__init__.py") if target.is_dir() else \
                            target.with_suffix(".py")
                        if alias.name not in _module_names(source):
                            missing.append(f"{path.relative_to(root)}:{node.lineno} {sub}")
    assert checked > 500  # the walk really read the imports
    assert missing == []


def _module_names(source) -> set[str]:
    """The names a module binds at its top level (in `if` and `try` blocks too)."""
    import ast

    names: set[str] = set()
    todo = list(ast.parse(source.read_text(encoding="utf-8")).body) if source.exists() else []
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target]):
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, (ast.If, ast.Try)):
            todo += node.body + node.orelse + getattr(node, "finalbody", []) + [
                s for h in getattr(node, "handlers", []) for s in h.body]
    return names
