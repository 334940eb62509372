"""The `Camera` contract: one stream source and what to watch on it.

A camera's credentials live apart from its URL: `Camera.url` is the stream URL without them (shown by APIs
and logs as it is) and `Camera.credentials` holds the user, the password and secret parameters as
`SecretStr`s. A URL given with credentials in it (`rtsp://user:pw@host/...`, `?user=..&password=..`, see
`contracts.streams.split_credentials`) is split on the way in, whoever builds the camera (the API, a bulk
import, `cameras.yaml`, the `gw:cameras` hash); `Camera.stream_url()` joins them again, only where a stream
is opened. JSON dumps (the registry's rows, the `gw:cameras` hash the workers read) carry the credentials in
clear; APIs show `CameraPublic` models, never a dump. A validation error never echoes a credential.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_serializer,
    field_validator,
    model_validator,
)

from contracts.alerts import GeoPoint
from contracts.rules import RuleConfig
from contracts.streams import REDACTED, join_credentials, redact_url, split_credentials

MAX_RULES = 64  # rules per camera; each runs on every sampled frame
# Control characters (NUL, newline, ... DEL) as a regex range, for Python's `re` and pydantic patterns alike.
CONTROL_RANGE = r"\x00-\x1f\x7f"
_CONTROL_CHAR = re.compile(f"[{CONTROL_RANGE}]")


class SiteType(StrEnum):
    key_unit = "key_unit"
    key_area = "key_area"
    key_site = "key_site"


def _reveal(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()


class StreamCredentials(BaseModel):
    """A camera's credentials, kept apart from its URL; `Camera.stream_url()` puts them in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    username: SecretStr | None = Field(
        default=None, max_length=256, description="User name (plain, not percent-encoded); write-only"
    )
    password: SecretStr | None = Field(
        default=None, max_length=256, description="Password (plain, not percent-encoded); write-only"
    )
    params: dict[str, SecretStr] = Field(
        default_factory=dict,
        max_length=16,
        description="Secret URL parameters by name (`user`, `password`, `token`...), values as written in a "
        "URL (percent-encoded); each goes where the URL has the name with an empty value, else at the end of "
        "its query; write-only",
    )

    @field_validator("params")
    @classmethod
    def _param_names(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for name, secret in value.items():
            if not name or len(name) > 64 or _CONTROL_CHAR.search(name) or any(c in "=&;#?/% " for c in name):
                raise ValueError(f"parameter name {name[:64]!r} is not a URL parameter name")
            if len(secret.get_secret_value()) > 1024 or _CONTROL_CHAR.search(secret.get_secret_value()):
                raise ValueError(f"parameter {name!r}: over 1024 characters or a control character")
        return value

    @field_serializer("username", "password", when_used="json")
    def _dump_secret(self, value: SecretStr | None) -> str | None:
        # JSON dumps go to the registry and the workers, which need the values; APIs show `summary()`.
        return _reveal(value)

    @field_serializer("params", when_used="json")
    def _dump_params(self, value: dict[str, SecretStr]) -> dict[str, str]:
        return {name: secret.get_secret_value() for name, secret in value.items()}

    def __bool__(self) -> bool:
        return self.username is not None or self.password is not None or bool(self.params)

    def summary(self) -> dict[str, Any]:
        """What is set, never a value: `{"username": True, "password": True, "params": ["token"]}`."""
        return {
            "username": self.username is not None,
            "password": self.password is not None,
            "params": sorted(self.params),
        }


def _plain_credentials(value: object) -> dict[str, Any] | None:
    """Credentials given as a model or a dict, as a dict of plain values (None: not given)."""
    if value is None:
        return {}
    if isinstance(value, StreamCredentials):
        return {
            "username": _reveal(value.username),
            "password": _reveal(value.password),
            "params": {k: v.get_secret_value() for k, v in value.params.items()},
        }
    if isinstance(value, Mapping):
        return dict(value)
    return None  # not a shape we can merge into: validation reports it


def _scrubbed(value: object) -> object:
    """An error's input without credentials: a camera's dict shows its URL redacted and no credentials."""
    if isinstance(value, Mapping):
        out = {k: _scrubbed(v) if k != "credentials" else REDACTED for k, v in value.items()}
        if isinstance(value.get("url"), str | SecretStr):
            url = value["url"]
            out["url"] = redact_url(url.get_secret_value() if isinstance(url, SecretStr) else url)
        return out
    if isinstance(value, SecretStr):
        return REDACTED
    if isinstance(value, str) and "://" in value:
        return redact_url(value)
    return value


class Camera(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    name: str = Field(default="", max_length=200, description="Display name; no control characters")
    url: str = Field(
        min_length=1,
        max_length=2048,
        description="Stream URL (rtsp://, http://, file path) without credentials: credentials written into "
        "it (`user:password@`, `?user=..&password=..`, `token=`...) are moved to `credentials`, a secret "
        "parameter keeping its place with an empty value",
    )
    credentials: StreamCredentials | None = Field(
        default=None,
        description="User, password and secret URL parameters, kept apart from `url` (write-only); those "
        "written into `url` replace these",
    )
    site_type: SiteType = SiteType.key_site
    site_id: str | None = Field(default=None, max_length=128)
    location: GeoPoint | None = None
    cell_id: str | None = Field(
        default=None, max_length=128, description="Fixed grid cell; by default located from `location`"
    )
    # Strict: a JSON number, never a string or a boolean of one (the bulk import converts its CSV text).
    sample_fps: float = Field(
        default=1.0, gt=0, le=30, strict=True, description="Frames per second handed to detection"
    )
    rules: tuple[RuleConfig, ...] = Field(
        default=(), max_length=MAX_RULES, description="Event rules run on this camera"
    )
    enabled: bool = Field(default=True, strict=True, description="true or false (not 0, 1 or a string)")

    @model_validator(mode="wrap")
    @classmethod
    def _no_secret_in_errors(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Camera:
        try:
            return handler(data)
        except ValidationError as exc:
            errors = exc.errors()
            for error in errors:
                inside = error["loc"][:1] == ("credentials",)
                error["input"] = REDACTED if inside else _scrubbed(error["input"])
            raise ValidationError.from_exception_data(exc.title, errors) from None  # type: ignore[arg-type]

    @model_validator(mode="before")
    @classmethod
    def _split_url(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        url = data.get("url")
        if isinstance(url, SecretStr):
            url = url.get_secret_value()
        if not isinstance(url, str):
            return data
        if "@" not in url and "=" not in url:
            return data if data["url"] is url else {**data, "url": url}  # no credential can be in it
        clean, found = split_credentials(url)
        data = {**data, "url": clean}
        if not found:
            return data
        credentials = _plain_credentials(data.get("credentials"))
        if credentials is None:
            return data
        if found.username is not None or found.password is not None:
            credentials.update(username=found.username, password=found.password)
        if found.params:
            params = credentials.get("params")
            credentials["params"] = {**(params if isinstance(params, Mapping) else {}), **dict(found.params)}
        data["credentials"] = credentials
        return data

    @field_validator("name", "url", "site_id", "cell_id")
    @classmethod
    def _no_control_characters(cls, value: str | None) -> str | None:
        if value is not None and _CONTROL_CHAR.search(value):
            raise ValueError("control characters (NUL, newline, ...) are not allowed")
        return value

    def stream_url(self) -> str:
        """The URL to open, credentials joined in: a secret, for the stream openers only (the ingest reader,
        the probe, the live view), never for display."""
        creds = self.credentials
        if not creds:
            return self.url
        return join_credentials(
            self.url,
            _reveal(creds.username),
            _reveal(creds.password),
            {name: secret.get_secret_value() for name, secret in creds.params.items()},
        )

    @property
    def redacted_url(self) -> str:
        """The URL for logs: `url`, with `***@` where a user is set and `***` for secret parameters."""
        return redact_url(self.stream_url())


class CameraConfigError(ValueError):
    """A camera list that does not validate; the message names the file and the camera."""


def parse_cameras(data: object, source: str) -> list[Camera]:
    """Validate a parsed camera file (`{"cameras": [...]}` or a bare list) into `Camera`s.

    Raises `CameraConfigError` naming `source` and the offending entry (by id or index); ids must be unique.
    """
    from pydantic import ValidationError

    items = data.get("cameras") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise CameraConfigError(f"{source}: expected a list of cameras under 'cameras'")
    cameras: list[Camera] = []
    seen: set[str] = set()
    for index, item in enumerate(items):
        label = f"camera #{index}"
        if isinstance(item, dict) and item.get("id"):
            label = f"camera {item['id']!r}"
        try:
            camera = Camera.model_validate(item)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
            )
            raise CameraConfigError(f"{source}: {label}: {problems}") from None
        if camera.id in seen:
            raise CameraConfigError(f"{source}: {label}: duplicate camera id")
        seen.add(camera.id)
        cameras.append(camera)
    return cameras
