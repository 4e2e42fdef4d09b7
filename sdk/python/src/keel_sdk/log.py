"""Log lines, recorded by the kernel with the plugin's id and the call they belong to."""

from wit_world.imports import log as wit_log


def trace(message: str) -> None:
    wit_log.log(wit_log.Level.TRACE, message)


def debug(message: str) -> None:
    wit_log.log(wit_log.Level.DEBUG, message)


def info(message: str) -> None:
    wit_log.log(wit_log.Level.INFO, message)


def warn(message: str) -> None:
    wit_log.log(wit_log.Level.WARN, message)


def error(message: str) -> None:
    wit_log.log(wit_log.Level.ERROR, message)
