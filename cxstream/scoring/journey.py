"""Journey stages: where in the journey a touchpoint lies, so that scores can be kept per
stage like per segment, channel and touchpoint.

The rules file's ``journey`` section may replace the stages and the mapping; a touchpoint
it does not map counts under ``unmapped``, listed after the stages.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: the stages in journey order, and the contract's touchpoints on them
STAGES = ("contact", "purchase", "delivery", "support", "renewal")
TOUCHPOINT_STAGES = {"onboarding": "contact", "browse": "contact", "checkout": "purchase",
                     "billing": "purchase", "delivery": "delivery", "courier": "delivery",
                     "returns": "support", "support": "support", "account": "support",
                     "renewal": "renewal"}


class Journey(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: in journey order
    stages: list[str] = Field(default=list(STAGES), min_length=1)
    #: touchpoint -> stage
    touchpoints: dict[str, str] = dict(TOUCHPOINT_STAGES)
    #: the stage of a touchpoint not mapped
    unmapped: str = Field(default="other", min_length=1, max_length=128)

    @model_validator(mode="after")
    def _known_stages(self) -> Journey:
        unknown = sorted({stage for stage in self.touchpoints.values()
                          if stage not in self.stages})
        if unknown:
            raise ValueError(f"touchpoints map to stages not in stages: {', '.join(unknown)}")
        if len(set(self.stages)) != len(self.stages):
            raise ValueError("stages: a stage is listed twice")
        if self.unmapped in self.stages:
            raise ValueError(f"unmapped: {self.unmapped!r} is one of the stages")
        return self

    def stage_of(self, touchpoint: str) -> str:
        return self.touchpoints.get(touchpoint, self.unmapped)

    def order(self) -> list[str]:
        """Every stage in journey order, the unmapped one last."""
        return [*self.stages, self.unmapped]
