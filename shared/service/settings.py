"""Settings for every service, built one way: CLI flags with environment-variable fallbacks.

A service declares its settings as a :class:`ServiceSettings` subclass (pydantic-settings)
with an ``env_prefix`` (``EDGE_``, ``CHANNEL_``, ``DEVICE_``). Each field ``name`` is set by
the flag ``--name`` (underscores as dashes) or else by the variable ``<PREFIX>NAME``, else
its default; ``public_names`` renames a field for both (``psnr_db`` -> ``--psnr``,
``CHANNEL_PSNR``). :func:`parse_settings` turns a bad value into a usage error: one line
naming the flag and the variable on stderr, exit code 2, never a traceback.

Booleans are strict: ``true/false``, ``1/0``, ``on/off`` (any case); a boolean flag given
alone means true (``--emulate-airtime``). Optional values take ``none`` or an empty string
for None.
"""

from __future__ import annotations

import argparse
import contextvars
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args, get_origin

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from shared.service.loop import EventLoop, resolve_event_loop
from shared.service.security import (
    channel_credentials,
    check_tls_files,
    load_admin_token,
    server_credentials,
)

TRUE_WORDS = ("true", "1", "on")
FALSE_WORDS = ("false", "0", "off")
NONE_WORDS = ("", "none")


def parse_bool(value: Any) -> bool:
    """Strict boolean: true/false, 1/0, on/off (any case); anything else is a ValueError."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(f"expected one of {'/'.join(TRUE_WORDS + FALSE_WORDS)}, got {value!r}")


def _none_words(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lower() in NONE_WORDS:
        return None
    return value


def _optional_bool(value: Any) -> bool | None:
    value = _none_words(value)
    return None if value is None else parse_bool(value)


StrictBool = Annotated[bool, BeforeValidator(parse_bool)]
OptionalBool = Annotated[bool | None, BeforeValidator(_optional_bool)]
LogLevel = Annotated[
    Literal["debug", "info", "warning", "error", "critical"],
    BeforeValidator(lambda v: v.strip().lower() if isinstance(v, str) else v),
]


def optional(type_: Any) -> Any:
    """``type_ | None`` where ``none`` or an empty string (flag or variable) means None."""
    return Annotated[type_ | None, BeforeValidator(_none_words)]


_CLIENT_TLS_DESCRIPTIONS = {
    "ca": "CA that signed the {peer}'s certificate, PEM (TLS to the {peer})",
    "cert": "client certificate for the {peer}, PEM (mutual TLS)",
    "key": "client key for the {peer}, PEM",
}


def client_tls_field(part: str, peer: str) -> Any:
    """The field ``<peer>_tls_<part>`` (``part``: ca, cert or key) of a service that calls
    ``peer``: an optional PEM file, read by :meth:`ServiceSettings.client_credentials`."""
    return Field(None, description=_CLIENT_TLS_DESCRIPTIONS[part].format(peer=peer))


# The environment parse_settings reads; construction without it reads no environment, so
# ``EdgeSettings(port=1)`` in a test is exactly what it says.
_ENVIRONMENT: contextvars.ContextVar[Mapping[str, str]] = contextvars.ContextVar(
    "settings_environment", default=MappingProxyType({})
)


class _EnvironmentSource(PydanticBaseSettingsSource):
    """Values from ``<PREFIX><NAME>`` variables of the environment parse_settings passed."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        env = _ENVIRONMENT.get()
        name = self.settings_cls.env_name(field_name)
        return env.get(name), name, False

    def __call__(self) -> dict[str, Any]:
        values = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, _, _ = self.get_field_value(field, field_name)
            if value is not None:
                values[field_name] = value
        return values


class ServiceSettings(BaseSettings):
    """Base of every service's settings: frozen, unknown names refused."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid")
    # field name -> public name of its flag and variable, where they differ
    public_names: ClassVar[dict[str, str]] = {}
    prog: ClassVar[str] = "python -m service"
    description: ClassVar[str] = ""

    log_level: LogLevel = Field("info", description="log level")
    event_loop: EventLoop = Field(
        "auto", description="asyncio event loop: auto (uvloop when installed), asyncio, uvloop"
    )

    @model_validator(mode="after")
    def _check_event_loop(self):
        resolve_event_loop(self.event_loop)  # ValueError: uvloop asked for but missing
        return self

    @classmethod
    def settings_customise_sources(
        cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _EnvironmentSource(settings_cls)

    @classmethod
    def public_name(cls, field_name: str) -> str:
        return cls.public_names.get(field_name, field_name)

    @classmethod
    def flag(cls, field_name: str) -> str:
        return "--" + cls.public_name(field_name).replace("_", "-")

    @classmethod
    def env_name(cls, field_name: str) -> str:
        return str(cls.model_config.get("env_prefix", "")) + cls.public_name(field_name).upper()

    def check_tls_fields(
        self, what: str, cert: str, key: str, ca: str, *, ca_needs_cert: bool = False
    ) -> None:
        """:func:`~shared.service.security.check_tls_files` over the fields named ``cert``,
        ``key`` and ``ca``; its ValueError names their flags."""
        check_tls_files(
            what,
            *(getattr(self, name) for name in (cert, key, ca)),
            cert_flag=self.flag(cert),
            key_flag=self.flag(key),
            ca_flag=self.flag(ca),
            ca_needs_cert=ca_needs_cert,
        )

    def check_client_tls(self, what: str, peer: str) -> None:
        """The TLS files of the calls to ``peer``: fields ``<peer>_tls_cert``, ``_key``, ``_ca``."""
        self.check_tls_fields(what, f"{peer}_tls_cert", f"{peer}_tls_key", f"{peer}_tls_ca")

    def client_credentials(self, peer: str):
        """gRPC credentials of the calls to ``peer`` from its ``<peer>_tls_*`` fields (None =
        plaintext)."""
        ca, cert, key = (getattr(self, f"{peer}_tls_{part}") for part in ("ca", "cert", "key"))
        return channel_credentials(ca, cert, key)

    def describe(self) -> str:
        """One ``name = value`` line per setting, for the start-up log."""
        rows = [f"  {name:<20}= {getattr(self, name)}" for name in type(self).model_fields]
        return f"{type(self).__name__}:\n" + "\n".join(rows)


class UsageError(SystemExit):
    """A bad flag or variable: exits with status 2 after one line on stderr."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, exit 2 (argparse prints the usage too)
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr, flush=True)
        raise UsageError(2)


def _is_bool(annotation: Any) -> bool:
    if annotation is bool:
        return True
    if get_origin(annotation) is Annotated:
        return _is_bool(get_args(annotation)[0])
    return bool(get_args(annotation)) and set(get_args(annotation)) <= {bool, type(None)}


def _choices(annotation: Any) -> tuple | None:
    if get_origin(annotation) is Annotated:
        return _choices(get_args(annotation)[0])
    if get_origin(annotation) is Literal:
        return get_args(annotation)
    return None


def build_parser(cls: type[ServiceSettings]) -> argparse.ArgumentParser:
    """The CLI of ``cls``: one flag per field, raw strings (pydantic converts and checks)."""
    parser = _Parser(
        prog=cls.prog,
        description=f"{cls.description} Every flag falls back to the environment variable "
        f"named in brackets, then to its default.",
    )
    for name, field in cls.model_fields.items():
        help_text = field.description or ""
        choices = _choices(field.annotation)
        if choices:
            help_text += f" ({' | '.join(map(str, choices))})"
        default = "required" if field.is_required() else f"default {field.default}"
        kwargs: dict[str, Any] = {
            "dest": name,
            "default": argparse.SUPPRESS,
            "help": f"{help_text} [{cls.env_name(name)}; {default}]",
        }
        if _is_bool(field.annotation):
            kwargs.update(nargs="?", const="true", metavar="on|off")
        parser.add_argument(cls.flag(name), **kwargs)
    return parser


_MESSAGES = {
    "greater_than_equal": lambda ctx: f"must be >= {ctx['ge']}",
    "greater_than": lambda ctx: f"must be > {ctx['gt']}",
    "less_than_equal": lambda ctx: f"must be <= {ctx['le']}",
    "less_than": lambda ctx: f"must be < {ctx['lt']}",
    "missing": lambda ctx: "is required",
}


def describe_error(cls: type[ServiceSettings], error: dict[str, Any]) -> str:
    """One validation error as one line naming the flag and the variable."""
    loc = error.get("loc") or ()
    field = next((part for part in loc if part in cls.model_fields), None)
    kind = error.get("type", "")
    if kind in _MESSAGES:
        text = _MESSAGES[kind](error.get("ctx") or {})
    else:
        text = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if field is None:  # a check across fields: its message names the flags
        return text
    where = f"{cls.flag(field)} / {cls.env_name(field)}"
    if kind == "missing":
        return f"{where} {text}"
    return f"{where}: {text}, got {error.get('input')!r}"


S = TypeVar("S", bound=ServiceSettings)


def parse_settings(
    cls: type[S], argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> S:
    """Settings of ``cls`` from ``argv`` (default sys.argv[1:]) over ``env`` (default the
    process environment) over the defaults. A bad value exits with status 2 and one line."""
    parser = build_parser(cls)
    flags = vars(parser.parse_args(argv))
    token = _ENVIRONMENT.set(os.environ if env is None else env)
    try:
        return cls(**flags)
    except ValidationError as exc:
        parser.error(describe_error(cls, exc.errors()[0]))
    finally:
        _ENVIRONMENT.reset(token)
    raise AssertionError("unreachable")


class AdminTokenSettings(ServiceSettings):
    """The admin token of a service whose state can be changed at run time (device, channel).

    Set, it guards the calls that change state (``Authorization: Bearer <token>``); unset
    (the default), they are open. The file form keeps the token out of ``ps`` and logs; the
    value is never printed (shown as ``**********``)."""

    admin_token: optional(SecretStr) = Field(
        None, description="admin token guarding state changes (prefer --admin-token-file)"
    )
    admin_token_file: optional(Path) = Field(
        None, description="file holding the admin token (one line)"
    )

    @model_validator(mode="after")
    def _check_admin_token(self):
        self.admin_token_value()  # ValueError with the flag's name
        return self

    def admin_token_value(self) -> str | None:
        """The token in force, or None (no token: state changes are open)."""
        token = None if self.admin_token is None else self.admin_token.get_secret_value()
        return load_admin_token(token, self.admin_token_file)


class GrpcServiceSettings(ServiceSettings):
    """What every gRPC service (channel, edge) has: address, metrics, shutdown, limits, TLS.

    Local runs listen on 127.0.0.1; containers set ``--host 0.0.0.0`` (docker-compose.yml)."""

    host: str = Field("127.0.0.1", description="listen address (0.0.0.0 = every interface)")
    port: int = Field(0, ge=0, le=65535, description="gRPC port")
    metrics_port: int = Field(0, ge=0, le=65535, description="Prometheus HTTP port, 0 = off")
    grace_s: float = Field(5.0, ge=0, description="graceful shutdown period, s")
    max_message_bytes: int = Field(
        4 * 1024 * 1024,
        ge=1024,
        description="max gRPC message size, bytes (sent and received; larger: RESOURCE_EXHAUSTED)",
    )
    tls_cert: optional(Path) = Field(None, description="server certificate, PEM (TLS on)")
    tls_key: optional(Path) = Field(None, description="server private key, PEM")
    tls_client_ca: optional(Path) = Field(
        None, description="CA of client certificates, PEM: mutual TLS required"
    )

    @model_validator(mode="after")
    def _check_tls(self):
        self.check_tls_fields(
            "server TLS", "tls_cert", "tls_key", "tls_client_ca", ca_needs_cert=True
        )
        return self

    def server_credentials(self):
        """gRPC server credentials (None = plaintext)."""
        return server_credentials(self.tls_cert, self.tls_key, self.tls_client_ca)
