"""The plugin's own settings, as the admin wrote them in its ``[plugins.<id>]`` section of
``keel.toml`` and the manifest typed them (numbers and booleans arrive in their TOML
spelling, ``"42"``, ``"true"``). A missing or unusable setting is ``misconfigured``, which
the kernel shows the admin."""

from wit_world.imports import config as wit_config

from . import errors


def get(key: str) -> str | None:
    """The value of setting ``key``, or ``None`` when it is not set and has no default."""
    return wit_config.get(key)


def require(key: str) -> str:
    """The value of setting ``key``; ``misconfigured`` when it is missing or empty."""
    value = wit_config.get(key)
    if value is None or value == "":
        raise errors.misconfigured(f"setting `{key}` is not set")
    return value


def integer(key: str, default: int | None = None) -> int | None:
    """Setting ``key`` as an integer (``default`` when not set)."""
    value = wit_config.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise errors.misconfigured(f"setting `{key}` is not a whole number: {value!r}") from None


def flag(key: str, default: bool) -> bool:
    """Setting ``key`` as a boolean (``"true"`` or ``"false"``; ``default`` when not set)."""
    value = wit_config.get(key)
    if value is None or value == "":
        return default
    if value in ("true", "false"):
        return value == "true"
    raise errors.misconfigured(f"setting `{key}` is not true or false: {value!r}")


class Secret:
    """A secret setting: its ``repr`` and ``str`` never show the value; ``expose()`` does."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def expose(self) -> str:
        """The secret itself, to sign or authenticate with. Never log it."""
        return self._value

    def __repr__(self) -> str:
        return "Secret(***)"

    __str__ = __repr__


def secret(key: str) -> Secret:
    """Setting ``key`` as a ``Secret``; ``misconfigured`` when missing or empty (an empty
    signing key would make every signature check pass for anyone who knows that)."""
    return Secret(require(key))
