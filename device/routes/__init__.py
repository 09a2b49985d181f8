"""The device's HTTP routes, one ``APIRouter`` per resource: ``infer`` (``POST /v1/infer``),
``knobs`` (``/v1/knobs``), ``channel`` (``/v1/channel...``), ``model`` (``GET /v1/model``)
and ``health`` (``/healthz``, ``/readyz``, ``/metrics``). The service reaches each route
through ``Depends`` (:mod:`device.routes.deps`); errors are answered by the handlers of
:mod:`device.http_errors`; ``device/app.py`` assembles them."""
