"""A logging filter that keeps secrets out of log output, and a one-call installer."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterable
from typing import Final

from patterns.scanning.rules import redact

__all__ = ["RedactingFilter", "install_log_redaction"]


def _redact_arg(value: object) -> object:
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(value if isinstance(value, str) else str(value))


def _redact_extra(value: object) -> object:
    """Strings inside ``extra=`` fields, keeping their structure for JSON formatters."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {_redact_extra(k): _redact_extra(v) for k, v in value.items()}
    if type(value) is list:
        return [_redact_extra(item) for item in value]
    if type(value) is tuple:  # exactly tuple: a named tuple is left as it is
        return tuple(_redact_extra(item) for item in value)
    return value


#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRIBUTES: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys() | {"message", "asctime"}
)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts secrets from the message, its arguments, the exception
    text and the stack info of every record it sees.

    Attach it to *handlers* (as :func:`install_log_redaction` does): a filter on a logger
    does not see records that propagate from its children. Arguments are redacted one by one
    rather than merged into the message, so formatters that read ``record.args`` (uvicorn's
    access log does) keep working. Exceptions are formatted here (chained causes, notes and
    exception groups included) and only the redacted text is kept: a formatter never sees the
    original exception. Fields passed with ``extra=`` are redacted too (strings, and strings
    inside dicts, lists and tuples; other objects are left as they are).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _redact_arg(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {name: _redact_arg(arg) for name, arg in record.args.items()}
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = redact(text)
            record.exc_info = None  # the formatter now prints the redacted exc_text only
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD_ATTRIBUTES:
                setattr(record, name, _redact_extra(value))
        return True


_LOGGERS_TO_GUARD: Final = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "httpx", "httpcore")


def install_log_redaction(logger_names: Iterable[str] = _LOGGERS_TO_GUARD) -> RedactingFilter:
    """Attach one :class:`RedactingFilter` to every handler of the named loggers (the root
    logger by default, plus uvicorn's and httpx's) and to :data:`logging.lastResort`.

    Idempotent. Handlers added afterwards need the filter too; the servers started by
    :mod:`patterns.serving` configure theirs with it.
    """
    handlers: list[logging.Handler] = []
    for name in logger_names:
        handlers.extend(logging.getLogger(name).handlers)
    if logging.lastResort is not None:
        handlers.append(logging.lastResort)
    shared = RedactingFilter()
    for handler in handlers:
        existing = [f for f in handler.filters if isinstance(f, RedactingFilter)]
        if existing:
            shared = existing[0]
        else:
            handler.addFilter(shared)
    return shared
