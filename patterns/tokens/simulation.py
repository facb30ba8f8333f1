"""What a leaked temporary token is worth: a small, exact simulation for notebook 06.

A legitimate client calls at a steady rate from the moment a token is minted. At some point
an attacker copies the token and calls at their own rate. Both draw on the same uses until
the token expires or runs out. The report says how many calls each side got, and for how
long the leak was exploitable: the number that TTL and max-uses exist to bound. A leaked
long-lived API key, by contrast, works until somebody notices and revokes it.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field

__all__ = ["ExposureReport", "simulate_leak"]


@dataclass(frozen=True, slots=True)
class ExposureReport:
    """The outcome of one scenario; times in minutes from minting."""

    ttl: float
    max_uses: int
    client_calls: int
    client_refused: int
    attacker_calls: int
    window: float  # how long the attacker could use the token
    ended_by: str  # "expiry", "uses" or "no leak"
    tokens_per_hour: float  # how often the client must fetch a fresh token
    client_times: list[float] = field(default_factory=list)
    attacker_times: list[float] = field(default_factory=list)

    def as_text(self) -> str:
        lines = [
            f"token: {self.ttl:g} min, {self.max_uses} uses; the client needs "
            f"{self.tokens_per_hour:.1f} fresh tokens an hour",
            f"client: {self.client_calls} calls served, {self.client_refused} refused",
        ]
        if self.ended_by == "no leak":
            lines.append("no leak in this scenario")
        else:
            lines.append(
                f"attacker: {self.attacker_calls} calls in a {self.window:.1f}-minute window "
                f"(ended by {self.ended_by})"
            )
        return "\n".join(lines)


def simulate_leak(
    *,
    ttl: float,
    max_uses: int,
    client_rate: float,
    leak_at: float | None,
    attacker_rate: float = 60.0,
) -> ExposureReport:
    """Replay one token's life call by call.

    ``ttl`` in minutes, rates in calls per minute, ``leak_at`` in minutes after minting
    (None: no leak). Calls arrive evenly spaced; on a tie the client goes first.
    """
    if ttl <= 0 or max_uses < 1 or client_rate <= 0 or attacker_rate <= 0:
        raise ValueError("ttl, max_uses and the rates must be positive")
    events: list[tuple[float, int, str]] = []
    for k in range(math.floor(client_rate * ttl) + 1):
        heapq.heappush(events, (k / client_rate, 0, "client"))
    if leak_at is not None and leak_at < ttl:
        for k in range(math.floor(attacker_rate * (ttl - leak_at)) + 1):
            heapq.heappush(events, (leak_at + k / attacker_rate, 1, "attacker"))
    uses = 0
    served: dict[str, list[float]] = {"client": [], "attacker": []}
    refused = 0
    exhausted_at: float | None = None
    while events:
        when, _, who = heapq.heappop(events)
        if when >= ttl:
            continue
        if uses < max_uses:
            uses += 1
            served[who].append(when)
            if uses == max_uses:
                exhausted_at = when
        elif who == "client":
            refused += 1
    leaked = leak_at is not None and leak_at < ttl
    end = exhausted_at if exhausted_at is not None else ttl
    window = max(0.0, end - leak_at) if leaked and leak_at is not None else 0.0
    if not leaked:
        ended_by = "no leak"
    else:
        ended_by = "uses" if exhausted_at is not None and exhausted_at < ttl else "expiry"
    lifetime = min(ttl, max_uses / client_rate)
    return ExposureReport(
        ttl=ttl,
        max_uses=max_uses,
        client_calls=len(served["client"]),
        client_refused=refused,
        attacker_calls=len(served["attacker"]),
        window=window,
        ended_by=ended_by,
        tokens_per_hour=60.0 / lifetime,
        client_times=served["client"],
        attacker_times=served["attacker"],
    )
