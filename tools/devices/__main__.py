import sys

from tools.devices.cli import main

sys.exit(main())
