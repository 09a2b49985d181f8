"""The paper experiments: one module each (``registry.py`` names them), their shared helpers
(``common.py``, ``grid.py``), the report (``report.py``) and the command line (``cli.py``:
`python -m trainer experiment <name>`, `python -m trainer report`)."""
