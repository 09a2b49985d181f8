"""Generated gRPC stubs for protos/coinference.proto (package coinference.v1).

Do not edit the ``*_pb2*`` files by hand: run ``python protos/generate.py``.

    from shared.rpc import coinference_pb2 as pb, coinference_pb2_grpc as pb_grpc
"""

from . import coinference_pb2, coinference_pb2_grpc

__all__ = ["coinference_pb2", "coinference_pb2_grpc"]
