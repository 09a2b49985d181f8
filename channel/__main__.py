"""``python -m channel``: run the AWGN channel proxy."""

import sys

from channel.server import main

sys.exit(main())
