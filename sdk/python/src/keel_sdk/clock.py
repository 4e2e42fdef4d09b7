"""The kernel's clock (a plugin has no other): the same time the kernel uses, so tests that
move the kernel's clock move the plugin's."""

from wit_world.imports import clock as wit_clock


def now() -> str:
    """Now, as RFC 3339 text in UTC (``"2026-12-07T10:30:00Z"``)."""
    return wit_clock.now()


def now_millis() -> int:
    """Now, in milliseconds since the Unix epoch."""
    return wit_clock.now_millis()
