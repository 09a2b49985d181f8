"""What counts as a change of code (shared.provenance): constants and code_tree's filter."""

from __future__ import annotations

import ast

from shared.provenance import code_tree, constant_assignments

SOURCE = """
import trainer.deep as deep
from trainer.parts import OPTIONS

EPOCHS = 20
RATES: tuple = (1e-5, 1.0)
TABLE = {"a": EPOCHS, "b": [r for r in RATES]}
PICKED = max(RATES)
A = B = 3
C, D = 1, 2
COUNT = 1
COUNT += 1
OPTIONS = {}
LOCAL = 1
WALRUS = (n := 4)


def f():
    LOCAL = 2
    return LOCAL
"""


def test_a_constant_binds_one_name_once_to_a_value_that_calls_nothing():
    """PICKED calls max; A = B and C, D bind two names; COUNT is augmented, OPTIONS imported,
    LOCAL bound again inside f, WALRUS runs :=: none of them is a constant."""
    found = constant_assignments(ast.parse(SOURCE))
    assert sorted(found) == ["EPOCHS", "RATES", "TABLE"]
    assert ast.unparse(found["TABLE"]) == "TABLE = {'a': EPOCHS, 'b': [r for r in RATES]}"


def test_code_tree_leaves_out_the_constants_and_functions_not_kept():
    """With ``keep`` a changed constant outside it is no change and one inside it is; without
    ``keep`` every change counts; a non-constant statement always counts."""
    keep = {"EPOCHS", "f"}
    moved = SOURCE.replace('"a": EPOCHS', '"a": 2 * EPOCHS')  # TABLE, not kept
    assert code_tree(moved, keep) == code_tree(SOURCE, keep)
    assert code_tree(moved) != code_tree(SOURCE)
    assert code_tree(SOURCE.replace("EPOCHS = 20", "EPOCHS = 21"), keep) != code_tree(SOURCE, keep)
    for old, new in (("max(RATES)", "min(RATES)"), ("COUNT += 1", "COUNT += 2")):
        assert code_tree(SOURCE.replace(old, new), keep) != code_tree(SOURCE, keep), new
