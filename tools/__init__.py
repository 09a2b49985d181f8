"""Developer tools that run beside the services: the stack launcher, the load bench
(``python -m tools.bench``) and the soak (``python -m tools.soak``).

Torch-free and never imported by a service (see the import-linter contracts in pyproject.toml).
"""
