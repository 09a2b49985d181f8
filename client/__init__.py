"""The client of the device's HTTP API (torch-free): ``python -m client`` and the library the
tools, the demo and the tests use (``http.py``: requests and summaries; ``groups.py``: one
observation to K devices; ``beta_sweep.py``: what each β costs on the air)."""
