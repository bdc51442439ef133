"""A customer base: segments, a long-tailed value distribution, owners, regions, languages,
and how its customers answer when nothing goes wrong (``SCORES``)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Literal

#: the input a simulated record goes to (mapped to the configured topic names)
Kind = Literal["customers", "interactions", "feedback"]

#: share of customers per segment, and the scale of their yearly value (EUR)
SEGMENTS: dict[str, tuple[float, float]] = {
    "enterprise": (0.05, 8_000.0),
    "smb": (0.25, 1_500.0),
    "consumer": (0.70, 300.0),
}
#: how often a customer of a segment comes back, relative to a consumer: a business
#: account has many people ordering and calling, so a segment of few accounts still gives
#: its scores enough answers to read (about a fifth of the traffic for 5 % of customers)
SEGMENT_ACTIVITY: dict[str, float] = {"enterprise": 5.0, "smb": 1.5, "consumer": 1.0}
#: Pareto shape within a segment; with the segment scales above, the top 20% of
#: customers hold about 75-88% of all value (the 80/20 of most customer bases)
PARETO_ALPHA = 1.3
REGIONS: dict[str, float] = {"LT": 0.30, "LV": 0.20, "EE": 0.20, "PL": 0.30}
LANGUAGES_BY_REGION: dict[str, dict[str, float]] = {
    "LT": {"lt": 0.8, "en": 0.1, "ru": 0.1},
    "LV": {"ru": 0.5, "en": 0.5},  # no Latvian lexicon yet: Russian and English speakers
    "EE": {"et": 0.8, "ru": 0.15, "en": 0.05},
    "PL": {"pl": 0.9, "en": 0.1},
}
ACCOUNT_MANAGERS = ("am.jonaitis", "am.tamm", "am.kowalska", "am.ozols", "am.petrauskaite",
                    "am.nowak")
SMB_OWNED_SHARE = 0.3


@dataclass(frozen=True)
class Customer:
    customer_id: str
    segment: str
    value: float
    owner: str | None
    region: str
    language: str

    def profile(self, updated_at: str) -> dict[str, object]:
        profile: dict[str, object] = {
            "customer_id": self.customer_id, "segment": self.segment, "value": self.value,
            "region": self.region, "updated_at": updated_at}
        if self.owner is not None:
            profile["owner"] = self.owner
        return profile


def pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def build_population(rng: random.Random, count: int) -> list[Customer]:
    """``count`` customers with ids c-00001...; deterministic for a given ``rng`` state."""
    customers = []
    segment_weights = {name: share for name, (share, _) in SEGMENTS.items()}
    for number in range(1, count + 1):
        segment = pick(rng, segment_weights)
        scale = SEGMENTS[segment][1]
        value = round(scale * rng.paretovariate(PARETO_ALPHA), 2)
        region = pick(rng, REGIONS)
        owner = None
        if segment == "enterprise" or (segment == "smb" and rng.random() < SMB_OWNED_SHARE):
            owner = rng.choice(ACCOUNT_MANAGERS)
        customers.append(Customer(f"c-{number:05d}", segment, value, owner, region,
                                  pick(rng, LANGUAGES_BY_REGION[region])))
    return customers


def top_share_of_value(customers: list[Customer], share: float = 0.2) -> float:
    """The part of all value held by the top ``share`` of customers."""
    values = sorted((c.value for c in customers), reverse=True)
    top = values[: max(1, round(len(values) * share))]
    return sum(top) / sum(values)


#: normal score distributions: NPS about +35, CSAT mostly 4-5, CES mostly easy
SCORES: dict[str, dict[int, float]] = {
    "nps": {10: 0.28, 9: 0.22, 8: 0.18, 7: 0.17, 6: 0.05, 5: 0.04, 4: 0.02, 3: 0.02,
            2: 0.01, 1: 0.005, 0: 0.005},
    "csat": {5: 0.45, 4: 0.35, 3: 0.14, 2: 0.04, 1: 0.02},
    "ces": {7: 0.35, 6: 0.30, 5: 0.18, 4: 0.09, 3: 0.04, 2: 0.02, 1: 0.02},
}
