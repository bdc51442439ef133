"""Simulated customers whose experience depends on who they are and what just happened to
them: the known truth the prediction model is measured against (SimConfig.propensity).

Each customer has a hidden trait t ~ N(0, 1), drawn once from the seed. Then:
- an interaction goes wrong (failure, abandoned or escalated) with probability
  sigmoid(logit(BAD_SHARE) + INTERACTION_WEIGHT * t);
- an answer is low (NPS <= 6, CSAT <= 2, CES <= 3: the state rules' defaults) with
  probability sigmoid(BASE[survey] + ANSWER_WEIGHT * t + RECENT_WEIGHT * b), b the
  customer's interactions gone wrong in the 7 days before (at most RECENT_CAP), and its
  score is drawn from the low or the other part of the survey's usual distribution.
That probability is the answer's propensity: ``truth`` keeps it by the event's sequence
number, for the bench to rank the model against (bench/prediction.py).
"""

from __future__ import annotations

import math
import random
from collections import deque

from cxstream.cli.simulator.population import SCORES, Customer, pick

BAD_SHARE = 0.045
INTERACTION_WEIGHT = 1.2
ANSWER_WEIGHT = 1.6
RECENT_WEIGHT = 0.9
RECENT_CAP = 4
RECENT_DAYS = 7.0
BASE = {"nps": -2.0, "csat": -2.8, "ces": -2.6}
LOW_MAX = {"nps": 6, "csat": 2, "ces": 3}
BAD_OUTCOMES = {"failure": 0.45, "abandoned": 0.35, "escalated": 0.20}
KEPT_PER_CUSTOMER = 16


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


class Traits:
    """The hidden traits of a population and their recent bad interactions."""

    def __init__(self, population: list[Customer], seed: int) -> None:
        rng = random.Random(f"traits-{seed}")
        self.trait = {customer.customer_id: rng.gauss(0.0, 1.0) for customer in population}
        self.bad_at: dict[str, deque[float]] = {}
        #: an answer's sequence number -> its propensity (the probability it is low)
        self.truth: dict[int, float] = {}
        self._bad_logit = math.log(BAD_SHARE / (1 - BAD_SHARE))

    def outcome(self, rng: random.Random, customer: Customer, at: float) -> str:
        trait = self.trait[customer.customer_id]
        if rng.random() >= _sigmoid(self._bad_logit + INTERACTION_WEIGHT * trait):
            return "success"
        self.bad_at.setdefault(customer.customer_id, deque(maxlen=KEPT_PER_CUSTOMER)
                               ).append(at)
        return pick(rng, BAD_OUTCOMES)

    def propensity(self, customer: Customer, survey: str, at: float) -> float:
        recent = sum(1 for when in self.bad_at.get(customer.customer_id, ())
                     if at - RECENT_DAYS * 86_400 <= when < at)
        return _sigmoid(BASE[survey] + ANSWER_WEIGHT * self.trait[customer.customer_id]
                        + RECENT_WEIGHT * min(recent, RECENT_CAP))

    def scores(self, rng: random.Random, customer: Customer, survey: str, at: float,
               sequence: int) -> dict[int, float]:
        """The distribution to draw this answer's score from: the low or the other part of
        the survey's usual one."""
        p = self.propensity(customer, survey, at)
        self.truth[sequence] = p
        low = rng.random() < p
        return {score: weight for score, weight in SCORES[survey].items()
                if (score <= LOW_MAX[survey]) == low}
