"""What an experiment's ``run`` reaches across the trainer modules (code_reach), read from a
small package written for each test."""

from __future__ import annotations

from pathlib import Path

from trainer.experiments.code_reach import reached_names

EXPERIMENT = """
from trainer.experiments import parts
from trainer.helpers import fit as train_model
from trainer.relay import evaluate

LIMIT = scale_limit(3)


def scale_limit(x):
    return x


def run(settings, out):
    return parts.plan(train_model(settings), evaluate)


def checks(results):
    from trainer.helpers import describe
    return describe(results)
"""

PARTS = """
def plan(model, score):
    return score(model)


def table(results):
    return results
"""

HELPERS = """
from trainer.deep import inner


class Model:
    def forward(self):
        return used_by_a_method()


def fit(settings):
    return inner(settings)


def used_by_a_method():
    return 1


def describe(results):
    return results


def never():
    return 0
"""

RELAY = "from trainer.deep import evaluate  # re-exported\n"

DEEP = """
def inner(x):
    return x


def evaluate(model):
    return model


def other():
    return 2
"""


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "trainer" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "trainer" / "experiments" / "exp.py"


def test_run_reaches_through_aliases_imports_and_re_exports_but_not_what_only_checks_calls(
    tmp_path,
):
    files = {"experiments/exp.py": EXPERIMENT, "experiments/parts.py": PARTS,
             "helpers.py": HELPERS, "relay.py": RELAY, "deep.py": DEEP}  # fmt: skip
    reached = reached_names(_package(tmp_path, files), "run", repo=tmp_path)
    assert reached == {
        # run, and what a top-level statement calls; not checks
        "trainer/experiments/exp.py": {"run", "scale_limit"},
        # parts.plan through the module alias; not parts.table
        "trainer/experiments/parts.py": {"plan"},
        # fit under its alias, a class's methods always; not describe (checks only), never
        "trainer/helpers.py": {"fit", "used_by_a_method"},
        "trainer/relay.py": set(),
        # inner through fit, evaluate through relay's re-export; not other
        "trainer/deep.py": {"inner", "evaluate"},
    }


def test_a_module_used_whole_reaches_all_its_functions(tmp_path):
    files = {
        "experiments/exp.py": (
            "import trainer.deep\nfrom trainer.experiments import parts\n\n\n"
            "def run(settings, out):\n    return trainer.deep.inner(apply(parts))\n\n\n"
            "def apply(module):\n    return module\n"
        ),
        "experiments/parts.py": PARTS,
        "deep.py": DEEP,
    }
    reached = reached_names(_package(tmp_path, files), "run", repo=tmp_path)
    assert reached["trainer/experiments/parts.py"] == {"plan", "table"}
    assert reached["trainer/deep.py"] == {"inner", "evaluate", "other"}


def test_a_decorated_function_counts_as_reached(tmp_path):
    """A decorator may put its function in a registry that run looks up by a string."""
    files = {
        "experiments/exp.py": (
            "from trainer.deep import inner as register\n\n\n@register\ndef variant(x):\n"
            "    return helper(x)\n\n\ndef helper(x):\n    return x\n\n\n"
            "def run(settings, out):\n    return 0\n"
        ),
        "deep.py": DEEP,
    }
    reached = reached_names(_package(tmp_path, files), "run", repo=tmp_path)
    assert reached["trainer/experiments/exp.py"] == {"run", "variant", "helper"}
    assert reached["trainer/deep.py"] == {"inner"}


def test_an_entry_the_module_lacks_reaches_every_function_of_it(tmp_path):
    files = {"experiments/exp.py": "def a():\n    return 1\n\n\ndef b():\n    return 2\n"}
    reached = reached_names(_package(tmp_path, files), "run", repo=tmp_path)
    assert reached == {"trainer/experiments/exp.py": {"a", "b"}}


def test_a_constant_is_reached_where_it_is_named_and_reaches_what_its_value_names(tmp_path):
    """WEIGHTS (a constant run names) reaches TABLE and through it the function ``pick``;
    LABEL is named only by checks; LIMIT calls something at import, so it and what it calls
    always count; COUNT is bound twice (not a constant: its statements always count, by name
    in neither set); deep.OTHER is reached through the module alias, deep.UNUSED is not."""
    files = {
        "experiments/exp.py": (
            "from trainer import deep\n\nTABLE = {'a': pick}\nWEIGHTS = (TABLE, deep.OTHER)\n"
            "LABEL = 'x'\nLIMIT = limit(3)\nCOUNT = 1\nCOUNT += 1\n\n\n"
            "def pick(x):\n    return x\n\n\ndef limit(x):\n    return x\n\n\n"
            "def run(settings, out):\n    return WEIGHTS\n\n\n"
            "def checks(results):\n    return LABEL\n"
        ),
        "deep.py": "OTHER = 2\nUNUSED = 3\n",
    }
    reached = reached_names(_package(tmp_path, files), "run", repo=tmp_path)
    assert reached == {
        "trainer/experiments/exp.py": {"run", "WEIGHTS", "TABLE", "pick", "limit"},
        "trainer/deep.py": {"OTHER"},
    }


def test_roots_are_reached_like_the_entry(tmp_path):
    """The command line reads FULL_EPOCHS off the experiment's module object, which no name in
    the code shows: passed as a root it counts, with what its value names."""
    files = {
        "experiments/exp.py": "BASE = 5\nFULL_EPOCHS = BASE\n\n\ndef run(s, o):\n    return 0\n"
    }
    path = _package(tmp_path, files)
    assert reached_names(path, "run", repo=tmp_path) == {"trainer/experiments/exp.py": {"run"}}
    with_root = reached_names(path, "run", repo=tmp_path, roots=["FULL_EPOCHS"])
    assert with_root == {"trainer/experiments/exp.py": {"run", "FULL_EPOCHS", "BASE"}}
