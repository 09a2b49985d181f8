"""``python -m client``: the device's command-line client (client/cli.py)."""

import sys

from client.cli import main

sys.exit(main())
