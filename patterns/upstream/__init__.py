"""A local stand-in for the Anthropic API: the offline upstream of every notebook and test.

It answers ``/v1/messages`` (plain and streamed), ``/v1/messages/count_tokens`` and
``/v1/models`` with the real API's shapes, headers, error envelopes, rate limits and CORS
rule, so the official SDK, a backend-for-frontend or a token proxy behaves against it as it
would against ``api.anthropic.com``. Replies are deterministic short poems, not a model.

>>> from patterns.upstream import UpstreamSettings, create_app, controls_of
>>> app = create_app(UpstreamSettings())
>>> controls_of(app).faults.fail_next(529)  # the next request gets "Overloaded"

Run it: ``python -m patterns serve upstream`` (see :mod:`patterns.upstream.cli`).
"""

from patterns.upstream.app import Controls, controls_of, create_app
from patterns.upstream.envelope import ERROR_TYPES, UpstreamError
from patterns.upstream.faults import Fault, FaultInjector
from patterns.upstream.ids import SequentialIds, random_id
from patterns.upstream.middleware import CORS_REJECTION, DANGEROUS_HEADER
from patterns.upstream.requestlog import AttackerRecord, RequestLog, RequestRecord
from patterns.upstream.settings import (
    DEFAULT_KEY_LABEL,
    KEYS_ENVIRONMENT_VARIABLE,
    KNOWN_API_VERSIONS,
    RateLimits,
    UpstreamSettings,
    keys_from_environment,
)

__all__ = [
    "CORS_REJECTION",
    "DANGEROUS_HEADER",
    "DEFAULT_KEY_LABEL",
    "ERROR_TYPES",
    "KEYS_ENVIRONMENT_VARIABLE",
    "KNOWN_API_VERSIONS",
    "AttackerRecord",
    "Controls",
    "Fault",
    "FaultInjector",
    "RateLimits",
    "RequestLog",
    "RequestRecord",
    "SequentialIds",
    "UpstreamError",
    "UpstreamSettings",
    "controls_of",
    "create_app",
    "keys_from_environment",
    "random_id",
]
