"""Regenerate the Python gRPC stubs in shared/rpc/ from protos/coinference.proto.

Usage: ``python protos/generate.py [--out DIR]`` (default: shared/rpc next to this repo).
Needs grpcio-tools (the dev extra). The generated ``*_pb2_grpc.py`` imports its message
module with a relative import, so ``from shared.rpc import coinference_pb2_grpc`` works.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent
REPO_ROOT = PROTO_DIR.parent
PROTO_FILES = ("coinference.proto",)
DEFAULT_OUT = REPO_ROOT / "shared" / "rpc"


def generate(out_dir: Path) -> list[Path]:
    """Run protoc into ``out_dir`` and fix the imports; return the generated files."""
    from grpc_tools import protoc  # dev dependency, imported only when generating

    out_dir.mkdir(parents=True, exist_ok=True)
    include = Path(protoc.__file__).resolve().parent / "_proto"
    args = [
        "grpc_tools.protoc",
        f"-I{PROTO_DIR}",
        f"-I{include}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *[str(PROTO_DIR / name) for name in PROTO_FILES],
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed: {' '.join(args)}")
    written = []
    for name in PROTO_FILES:
        stem = Path(name).stem
        for suffix in ("_pb2.py", "_pb2_grpc.py"):
            path = out_dir / f"{stem}{suffix}"
            text = path.read_text()
            # protoc emits `import coinference_pb2 as ...`; make it package-relative.
            text = re.sub(
                r"^import (\w+_pb2) as (\w+)$", r"from . import \1 as \2", text, flags=re.M
            )
            path.write_text(text)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = parser.parse_args(argv)
    for path in generate(args.out):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
