"""How a measured configuration decodes, in one label the runs list, the plan and a workload
share.

    label := STRATEGY ["-a" N] ["-vgb"] ["-t" T]

``STRATEGY`` is the runtime's (plain, threshold, vgb, regenerate); ``-aN`` the regenerate
strategy's most whole answers; ``-vgb`` its VGB-over-answers acceptance (``accept: value``);
``-tT`` a sampled run's temperature (greedy runs have none). ``threshold`` is greedy
threshold backtracking; ``regenerate-a8`` up to 8 whole answers, the first greedy;
``regenerate-a4-vgb-t0.8`` VGB over up to 4 answers sampled at T=0.8; ``vgb-t0.7`` token-level
VGB at T=0.7. An eval config and a runs-list entry map to exactly one label, so a plan row is
the run that measured it, never a run of another decoding.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from runtime.errors import UsageError, first_problem
from runtime.samplers.strategies import StrategyName

_LABEL = re.compile(
    r"^(?P<strategy>[a-z]+)(?:-a(?P<attempts>\d+))?(?P<vgb>-vgb)?(?:-t(?P<t>\d+(?:\.\d+)?))?$"
)
EXAMPLES = ("threshold", "regenerate-a8", "regenerate-a4-vgb-t0.8", "vgb-t0.7", "plain")


class Decoding(BaseModel):
    """A strategy with the options that change what it measures."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: StrategyName = "plain"
    attempts: int | None = Field(None, ge=1, le=64)
    accept: Literal["threshold", "value"] | None = None
    temperature: float = Field(0.0, ge=0.0, le=5.0)

    @property
    def label(self) -> str:
        out: str = self.strategy
        if self.attempts is not None:
            out += f"-a{self.attempts}"
        if self.accept == "value":
            out += "-vgb"
        if self.temperature > 0:
            out += f"-t{self.temperature:g}"
        return out

    @property
    def sampled(self) -> bool:
        return self.temperature > 0

    @classmethod
    def of_run(cls, run: Mapping[str, Any]) -> Decoding:
        """The decoding of an eval config or a runs-list entry (fields absent: defaults)."""
        return cls(
            strategy=run.get("strategy") or "plain",
            attempts=run.get("attempts"),
            accept=run.get("accept") if run.get("accept") == "value" else None,
            temperature=float(run.get("temperature") or 0.0),
        )

    @classmethod
    def parse(cls, text: str) -> Decoding:
        """A label back to its decoding; a wrong one is refused with the closest spellings."""
        found = _LABEL.match(text.strip())
        strategies = get_args(StrategyName)
        if found is None or found["strategy"] not in strategies:
            close = difflib.get_close_matches(text.strip(), EXAMPLES, n=2, cutoff=0.5)
            hint = f" (did you mean {' or '.join(close)}?)" if close else ""
            raise UsageError(
                f"decoding {text!r} is not one{hint}; spell it STRATEGY[-aN][-vgb][-tT] with a "
                f"strategy of {', '.join(strategies)}, e.g. {', '.join(EXAMPLES[:4])}"
            )
        strategy = found["strategy"]
        if (found["attempts"] or found["vgb"]) and strategy != "regenerate":
            raise UsageError(
                f"decoding {text!r}: -aN and -vgb are the regenerate strategy's options; "
                f"drop them or use regenerate"
            )
        if found["vgb"] and not found["t"]:
            raise UsageError(
                f"decoding {text!r}: VGB over answers samples every answer; give its "
                "temperature, e.g. regenerate-a4-vgb-t0.8"
            )
        try:
            return cls(
                strategy=strategy,
                attempts=int(found["attempts"]) if found["attempts"] else None,
                accept="value" if found["vgb"] else None,
                temperature=float(found["t"] or 0.0),
            )
        except ValidationError as exc:
            field, msg = first_problem(exc)
            raise UsageError(f"decoding {text!r}: {field}: {msg}; fix the label") from None


__all__ = ["Decoding"]
