"""The choices that vendors make differently, made explicit (see README, "Conventions")."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Conventions(BaseModel):
    """How answers become group scores; every field is a CXSTREAM_* setting."""

    model_config = ConfigDict(frozen=True)

    #: "all_responses": NPS = (P - D) / (P + passives + D), the usual definition;
    #: "promoters_and_detractors": passives are left out of the denominator.
    nps_denominator: Literal["all_responses", "promoters_and_detractors"] = "all_responses"
    #: "all_answers": every answer counts; "latest_per_customer": in each window only a
    #: customer's latest answer (by event time) per survey counts.
    score_basis: Literal["all_answers", "latest_per_customer"] = "all_answers"
    #: CSAT answers at or above this count as satisfied (top-2-box on 1-5).
    csat_satisfied_min: int = Field(default=4, ge=1, le=5)
    #: CES: the contract's scale has 7 = very easy; set False for a source where 1 = easy.
    ces_high_is_easy: bool = True
    #: CES answers (after direction) at or above this are "easy", at or below this "hard".
    ces_easy_min: int = Field(default=5, ge=1, le=7)
    ces_hard_max: int = Field(default=3, ge=1, le=7)
    #: z of the confidence level used for margins of error (1.96: 95 %).
    confidence_z: float = Field(default=1.96, gt=0, le=5)

    @model_validator(mode="after")
    def _check_ces_bands(self) -> Conventions:
        if self.ces_hard_max >= self.ces_easy_min:
            raise ValueError("ces_hard_max must be below ces_easy_min")
        return self

    def ces_effort(self, score: int) -> int:
        """The CES answer on the contract's direction (7 = very easy)."""
        return score if self.ces_high_is_easy else 8 - score
