"""The coin that decides whether an expert reply is accepted (EAPO.md §1 step 2, §8).

Why a hash and not a random generator: a draw computed from `(seed, episode, key)` has no
state, so a resumed run makes exactly the decisions it would have made, every process of
a distributed run agrees without communicating, and the order in which replies arrive
(experts answer concurrently) cannot change any decision.

Why a granularity: the paper draws a fresh coin per reply, and a policy learns to repeat
a refused question until the coin comes up (EAPO.md §8, PILOT lesson 1). Keying the draw on
the normalised question (the default) or on the episode makes asking again useless. The
granularity also changes what a schedule means (PILOT lesson 3): per reply, an episode
that needs k consults gets them all with probability rho**k; per episode, with rho.

Departure from the paper: we accept iff `u < rho` with `u` in [0, 1), where the paper
writes `u <= rho`. The two differ on a set of measure zero, and ours gives exact ends:
rho = 0 never accepts and rho = 1 always does.

Not here: the value of rho (see `acceptance` and `adaptive`), and what a refusal looks
like to the policy (the rollout renders it).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from eapo.protocol.parser import normalize_query
from eapo.schema.checks import check_unit as _check_unit
from eapo.schema.schedules import GRANULARITIES  # re-export: the choices live in eapo.schema


def accept(u: float, rho: float) -> bool:
    """Whether a draw `u` in [0, 1) is accepted under acceptance rate `rho` in [0, 1].

    `u < rho`, so rho = 0 never accepts and rho = 1 always does.

    >>> accept(0.0, 0.0), accept(0.999, 1.0), accept(0.3, 0.5)
    (False, True, True)
    """
    _check_unit("rho", rho)
    return u < rho


@dataclass(frozen=True)
class AcceptanceGate:
    """Stateless, seeded acceptance draws.

    `granularity`:
      - "question" (default): one draw per (episode, normalised question), normalised by
        the parser's `normalize_query` (case, Unicode forms, spacing, trailing punctuation);
      - "episode": one draw per episode, the channel is open or closed for all of it;
      - "reply": one draw per reply (the paper's behaviour), keyed on `reply_index`, which
        must count replies across the whole episode, not within one turn.
    """

    seed: int
    granularity: str = "question"

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise TypeError(f"AcceptanceGate.seed must be an int, got {self.seed!r}")
        if self.granularity not in GRANULARITIES:
            raise ValueError(
                f"AcceptanceGate.granularity must be one of {', '.join(GRANULARITIES)}, "
                f"got {self.granularity!r}"
            )

    def key(self, query: str, reply_index: int) -> str:
        """What, besides the episode, the draw depends on under this granularity."""
        if self.granularity == "question":
            return normalize_query(query)
        if self.granularity == "reply":
            return str(int(reply_index))
        return ""

    def draw(self, episode_uid: str, query: str, reply_index: int) -> float:
        """A uniform draw u in [0, 1): the top 53 bits of a BLAKE2b digest of
        (seed, granularity, episode uid, key), so every float the grid holds is equally
        likely. JSON encodes the fields so no two tuples share a message."""
        message = json.dumps([self.seed, self.granularity, episode_uid, self.key(query, reply_index)])
        digest = hashlib.blake2b(message.encode("utf-8"), digest_size=8).digest()
        return (int.from_bytes(digest, "big") >> 11) / float(1 << 53)

    def decide(self, episode_uid: str, query: str, reply_index: int, rho: float) -> tuple[bool, float]:
        """`(accepted, u)`: the decision and the draw behind it, for the call record."""
        u = self.draw(episode_uid, query, reply_index)
        return accept(u, rho), u
