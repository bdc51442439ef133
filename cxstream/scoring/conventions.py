"""The choices that vendors make differently, made explicit (docs/scoring.md, "Conventions")."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Conventions(BaseModel):
    """How answers become group scores; every field is a CXSTREAM_* setting."""

    model_config = ConfigDict(frozen=True, use_attribute_docstrings=True)

    nps_denominator: Literal["all_responses", "promoters_and_detractors"] = "all_responses"
    """NPS = % promoters (9-10) minus % detractors (0-6) over all answers;
    `promoters_and_detractors` leaves passives out of the denominator
    """
    score_basis: Literal["all_answers", "latest_per_customer"] = "all_answers"
    """every answer counts; `latest_per_customer`: in each window only a customer's latest
    answer (by event time) per survey counts, an earlier one in the same window is
    retracted, an older one arriving later is ignored
    """
    csat_satisfied_min: int = Field(default=4, ge=1, le=5)
    """CSAT score = % of answers at or above this (top-2-box on 1-5); the mean is reported too."""
    ces_high_is_easy: bool = True
    """the contract's CES has 7 = very easy; `false` flips a source where 1 = easy."""
    ces_easy_min: int = Field(default=5, ge=1, le=7)
    """CES answers (in the contract's direction) at or above this count as easy."""
    ces_hard_max: int = Field(default=3, ge=1, le=7)
    """CES answers at or below this count as hard; the CES score is the mean, with % hard."""
    confidence_z: float = Field(default=1.96, gt=0, le=5)
    """z of the margins of error (95 %)."""

    @model_validator(mode="after")
    def _check_ces_bands(self) -> Conventions:
        if self.ces_hard_max >= self.ces_easy_min:
            raise ValueError("ces_hard_max must be below ces_easy_min")
        return self

    def ces_effort(self, score: int) -> int:
        """The CES answer on the contract's direction (7 = very easy)."""
        return score if self.ces_high_is_easy else 8 - score
