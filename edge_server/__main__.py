"""``python -m edge_server``: run the gRPC edge decoder."""

import sys

from edge_server.server import main

sys.exit(main())
