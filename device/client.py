"""``python -m device.client``: an alias of ``python -m client``, the client of the device's
HTTP API (the client is its own package, beside the services: client/)."""

import runpy

if __name__ == "__main__":
    runpy.run_module("client", run_name="__main__", alter_sys=True)
