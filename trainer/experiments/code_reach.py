"""The trainer code an experiment's ``run`` can reach: which modules, and in each which functions
and constants.

A stored figure can move only when code that produced it changes. ``trainer_imports`` finds
the trainer modules an experiment's module imports, directly or through each other;
``reached_names`` narrows each of them to the top-level functions and constants that ``run``
reaches by name, directly or through the other modules, so that a change to a function or a
constant only the report uses (an experiment's ``checks``, ``summary_rows``, ``notes`` and
their helpers, wherever they live), or a constant added for another experiment, does not make
a run stale (``report.changed_code``).

The reading is static and leans towards "reached" when unsure:

- a constant is a top-level ``NAME = value`` whose value calls nothing, and whose name no
  other top-level statement binds (``shared.provenance.constant_assignments``); it is reached
  where it is named, like a function, and what its value names with it;
- what a module runs outside its functions and constants (classes with all their methods,
  imports, assignments that call something, the names those statements use, decorated
  functions) is always reached, in every module of the set;
- a name is followed to a top-level function of the same name in its own module and to every
  ``from trainer... import`` that binds it anywhere in the module (inside functions too),
  through re-exports;
- ``alias.f`` on a module bound by ``from trainer.x import module`` or ``import trainer.x as
  alias`` reaches ``f`` there; a module used any other way (passed along, ``import trainer.x``
  spelt out at its use) reaches all its functions.

The trainer reaches no function by a name built at run time (no ``getattr`` on a module, no
``importlib``); code that did would have to name the function in a top-level statement. The
one attribute read off an experiment's module object is the registry protocol's
(``registry.PROTOCOL``: ``module.FULL_EPOCHS`` in the command line): pass those names as
``roots``.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterable
from pathlib import Path

from shared.provenance import REPO

EVERY_FUNCTION = "*"  # a module used whole

# The code every experiment depends on whether it imports it or not: the torch-free and model
# code under shared/ (the zoo builds families by name) and the experiments' command line
# (trainer/experiments/cli.py: settings, torch threads). The trainer modules an experiment
# uses are the ones it imports, directly or through each other (``trainer_imports``): a change
# to one of them makes stale exactly the experiments that import it. The services, tools and
# tests are not in it, nor the trainer's own command line (trainer/__main__.py), which only
# hands `experiment` over.
MODEL_CODE = [
    "shared/nn", "shared/channel.py", "shared/entropy.py", "shared/quantizer.py",
    "shared/link", "shared/idx.py", "shared/image_metrics.py", "shared/views.py",
    "shared/manifest.py", "shared/fading.py",
    "trainer/experiments/cli.py",
]  # fmt: skip


def code_of(module: str, repo: Path = REPO) -> list[str]:
    """The paths whose change can move what the trainer module ``module`` (repository-relative)
    computes: ``MODEL_CODE``, then the trainer modules it imports (``trainer_imports``)."""
    return [*MODEL_CODE, *sorted(trainer_imports(repo / module, repo) - set(MODEL_CODE))]


def trainer_imports(path: Path, repo: Path = REPO) -> set[str]:
    """The ``trainer`` modules that ``path`` imports, directly or through each other (import
    statements anywhere in the file, read with ``ast``), as repository-relative paths; the file
    itself included. An experiment that keeps its training or its checks in helper modules
    (``trainer/qml_train.py``, ``vl_vfe_parts.py``) goes stale when those change."""
    seen: set[str] = set()
    todo = [path.resolve()]
    while todo:
        current = todo.pop()
        relative = str(current.relative_to(repo))
        if relative in seen:
            continue
        seen.add(relative)
        for node in ast.walk(_parse(current)):
            for module in _imported_modules(node):
                candidate = _module_file(module, repo)
                if candidate is not None:
                    todo.append(candidate)
    return seen


def reached_names(
    path: Path, entry: str, repo: Path = REPO, roots: Iterable[str] = ()
) -> dict[str, set[str]]:
    """{module path: the names of its top-level functions and constants that ``entry`` (a
    top-level function of the module at ``path``) reaches} for every module of
    ``trainer_imports(path)``: those ``entry`` names, directly or through each other and the
    other modules, those any module's top-level statements name, and the ``roots`` (names in
    the module at ``path`` read from outside it)."""
    own = str(path.resolve().relative_to(repo))
    modules = {
        relative: _with_constants(_Module(relative, repo))
        for relative in trainer_imports(path, repo)
    }
    reached: dict[str, set[str]] = {relative: set() for relative in modules}
    todo = [(own, entry if entry in modules[own].functions else EVERY_FUNCTION)]
    todo += [(own, name) for name in roots]
    for module in modules.values():
        todo += module.top_level_references
    seen: set[tuple[str, str]] = set()
    while todo:
        relative, name = todo.pop()
        module = modules.get(relative)
        if module is None or (relative, name) in seen:
            continue
        seen.add((relative, name))
        if name == EVERY_FUNCTION:
            todo += [(relative, function) for function in module.functions]
        elif name in module.functions:
            reached[relative].add(name)
            todo += module.references([module.functions[name]])
        todo += module.bindings.get(name, [])
    return reached


def _with_constants(module: _Module) -> _Module:
    """``module`` with its constants (``shared.provenance.constant_assignments``) read as its
    top-level functions are: each reached only where it is named, and what its value names
    with it; the rest outside functions still always reached. (A step after ``_Module``, not in
    it: the multi-device experiment's stored runs reach the class through ``code_of``, and a
    change to it would make them stale; fold it in at their next re-run.)"""
    from shared.provenance import constant_assignments

    tree = _parse(module.repo / module.relative)
    module.functions.update(constant_assignments(tree))
    named = set(map(id, module.functions.values()))
    others = [node for node in tree.body if id(node) not in named]
    decorated = [
        (module.relative, name)
        for name, node in module.functions.items()
        if getattr(node, "decorator_list", None)
    ]
    module.top_level_references = module.references(others) + decorated
    return module


class _Module:
    """One trainer module as the reach walk reads it: its top-level functions (``functions``,
    name -> statement; ``_with_constants`` adds the constants), what its imports bind and what
    its top-level statements name."""

    def __init__(self, relative: str, repo: Path):
        self.relative, self.repo = relative, repo
        tree = _parse(repo / relative)
        self.functions = {
            node.name: node
            for node in tree.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        # name -> [(module path, name there)] for each trainer import binding it
        self.bindings: dict[str, list[tuple[str, str]]] = {}
        self.module_aliases: dict[str, str] = {}  # name -> path of a module it binds whole
        for node in ast.walk(tree):
            self._bind(node)
        others = [node for node in tree.body if node not in self.functions.values()]
        # a decorator runs at import and may hand its function to a registry: such a function
        # counts as reached, as what the module's top-level statements name does
        decorated = [(relative, n) for n, node in self.functions.items() if node.decorator_list]
        self.top_level_references = self.references(others) + decorated

    def _bind(self, node: ast.AST) -> None:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            source = _module_file(node.module, self.repo)
            for alias in node.names:
                bound = alias.asname or alias.name
                whole = _module_file(f"{node.module}.{alias.name}", self.repo)
                if whole is not None:
                    self.module_aliases[bound] = str(whole.relative_to(self.repo))
                elif source is not None:
                    target = (str(source.relative_to(self.repo)), alias.name)
                    self.bindings.setdefault(bound, []).append(target)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                found = _module_file(alias.name, self.repo)
                if found is None:
                    continue
                relative = str(found.relative_to(self.repo))
                if alias.asname:
                    self.module_aliases[alias.asname] = relative
                else:  # used spelt out (trainer.x.f): every function of it
                    self.bindings.setdefault(alias.name.split(".")[0], []).append(
                        (relative, EVERY_FUNCTION)
                    )

    def references(self, nodes: Iterable[ast.AST]) -> list[tuple[str, str]]:
        """(module path, name) of everything ``nodes`` name: a bare name here (a function of
        this module, or what an import binds to it), ``alias.f`` in the module ``alias`` binds,
        and a module alias used any other way whole."""
        walked = [node for top in nodes for node in ast.walk(top)]
        out: list[tuple[str, str]] = []
        bases: set[int] = set()
        for node in walked:
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                module = self.module_aliases.get(node.value.id)
                if module is not None:
                    bases.add(id(node.value))
                    out.append((module, node.attr))
        for node in walked:
            if isinstance(node, ast.Name) and id(node) not in bases:
                out.append((self.relative, node.id))
                if node.id in self.module_aliases:
                    out.append((self.module_aliases[node.id], EVERY_FUNCTION))
        return out


def _parse(path: Path) -> ast.Module:
    """The syntax tree of the file at ``path``, parsed once for each text the file has had
    (a report checks dozens of runs against the same modules); callers only read it."""
    return _parse_text(path.read_text())


@functools.lru_cache(maxsize=512)
def _parse_text(text: str) -> ast.Module:
    return ast.parse(text)


def _imported_modules(node: ast.AST) -> list[str]:
    """The dotted names an import statement may load (a ``from`` import's module and each
    ``module.name``, which is a module when it names one); others: none."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        return [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return []


def _module_file(dotted: str, repo: Path) -> Path | None:
    """The file of trainer module ``dotted`` in ``repo``; None for other packages, packages
    themselves and names that are not modules."""
    if dotted.split(".")[0] != "trainer":
        return None
    candidate = repo.joinpath(*dotted.split(".")).with_suffix(".py")
    return candidate if candidate.is_file() else None
