"""One-off investigations of the serving path, kept so their figures can be re-run.

Not part of the bench a user runs (``python -m tools.bench``); each is a command of its own:

- ``python -m tools.investigations.ab``: several stacks side by side at C=1, alternating
  blocks (before/after a change, or with bare stand-ins for channel and edge);
- ``python -m tools.investigations.bare``: those stand-ins (a raw-bytes channel, a canned edge);
- ``python -m tools.investigations.cpu``: CPU seconds per request of each service;
- ``python -m tools.investigations.profile``: py-spy profiles of the services under load;
- ``python -m tools.investigations.runs``: several bench ``results.json`` files side by side.

The cache probe these runs read (``tools.bench.contention``) stays with the bench, whose
paired C=1 measurement runs it after every round.
"""
