"""The verifier grammar: one parser for every place a verifier is named.

    spec  := "none" | part ("+" part)*          parts stack: their values multiply
    part  := KIND ["=" ARG] | "model:" NAME ["=" HEAD]

The kinds, what their ``ARG`` is and what they need are in the registry
(:mod:`runtime.verifiers.registry`); adding a verifier adds one entry there. ``generate``,
``eval``, ``profile``, ``serve``, ``plan``, ``predict``, the workload file and the dashboard all
read specs through :meth:`VerifierSpec.parse`, so a spelling means the same thing everywhere and
a wrong one is refused the same way (with the closest spellings).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path

from runtime.errors import UsageError
from runtime.verifiers.registry import KINDS, SELF, VerifierKind, spec_help
from runtime.verifiers.shipped import HEADS_DIR


def _refuse(spec: str, why: str) -> UsageError:
    return UsageError(f"verifier {spec!r}: {why}; spell it as {spec_help(short=True)}")


@dataclass(frozen=True)
class VerifierPart:
    """One stacked verifier: its kind, the model it loads (``model:NAME``), its argument."""

    kind: str
    arg: str | None = None
    model: str | None = None

    @property
    def info(self) -> VerifierKind:
        return KINDS[self.kind]

    @property
    def count(self) -> int:
        """A counted kind's N (``examples=N``), its default when not given."""
        info = self.info
        assert info.arg == "count" and info.default_count is not None
        return info.default_count if self.arg is None else int(self.arg)

    @property
    def head(self) -> str:
        """A learned kind's head reference: a file, ``shipped`` (default) or ``constant``."""
        return self.arg or "shipped"

    def __str__(self) -> str:
        name = f"model:{self.model}" if self.kind == "model" else self.kind
        return f"{name}={self.arg}" if self.arg is not None else name

    def plan_key(self, main_model: str | None = None, *, heads: bool = True) -> str:
        """This part as the planner compares it: shipped heads (by file, or their cross-fit
        manifest) are ``shipped``, a verifier model that is the main model is ``self``;
        ``heads=False`` drops every head (what a configuration costs does not depend on it)."""
        name = self.kind
        if self.kind == "model":
            same = main_model is not None and (self.model or "").casefold() == main_model.casefold()
            name = f"model:{SELF if same else self.model}"
        if self.info.arg != "head":
            return f"{name}={self.arg}" if self.arg is not None else name
        if not heads:
            return name
        head = self.head
        if head not in ("shipped", "constant") and (HEADS_DIR / Path(head).name).is_file():
            head = "shipped"  # the shipped head, or the cross-fit manifest it came with
        return name if head == "shipped" else f"{name}={head}"


@dataclass(frozen=True)
class VerifierSpec:
    """A parsed ``--verifier`` value: no parts for ``none``."""

    parts: tuple[VerifierPart, ...] = ()

    @classmethod
    def parse(cls, text: str | VerifierSpec) -> VerifierSpec:
        if isinstance(text, VerifierSpec):
            return text
        spec = text.strip()
        if spec in ("", "none"):
            return cls(())
        pieces = [p.strip() for p in spec.split("+")]
        if any(not p for p in pieces):
            raise _refuse(spec, "an empty part (two '+' in a row, or one at an end)")
        parts = tuple(_parse_part(spec, p) for p in pieces)
        seen: set[str] = set()
        for part in parts:
            label = str(part).partition("=")[0]
            if label in seen:
                raise _refuse(spec, f"{label} appears twice")
            seen.add(label)
        return cls(parts)

    @property
    def is_none(self) -> bool:
        return not self.parts

    @property
    def runs_code(self) -> bool:
        """Executes model output (in the sandbox): ``serve`` needs --allow-code-execution."""
        return any(p.info.runs_code for p in self.parts)

    @property
    def needs_hidden_states(self) -> bool:
        """Reads the main model's hidden states (the engine must keep embeddings on)."""
        return any(p.info.needs_hidden for p in self.parts)

    @property
    def needs_second_model(self) -> bool:
        return any(p.kind == "model" for p in self.parts)

    @property
    def learned(self) -> bool:
        """Some part scores with a trained head (its quality is tied to that head)."""
        return any(p.info.arg == "head" for p in self.parts)

    @property
    def needs_request_checks(self) -> bool:
        """Some part judges with checks a request supplies (``tests``)."""
        return any(p.info.request_checks for p in self.parts)

    @property
    def verifier_models(self) -> tuple[str, ...]:
        return tuple(p.model for p in self.parts if p.model is not None)

    def part(self, kind: str) -> VerifierPart | None:
        return next((p for p in self.parts if p.kind == kind), None)

    def __str__(self) -> str:
        return "+".join(str(p) for p in self.parts) if self.parts else "none"

    def plan_key(self, main_model: str | None = None, *, heads: bool = True) -> str:
        """Canonical for comparing configurations across files: parts in registry order, shipped
        heads as the default, ``model:self`` for the main model's own weights (``heads=False``:
        without heads, to compare what configurations cost)."""
        if not self.parts:
            return "none"
        order = list(KINDS)
        ranked = sorted(self.parts, key=lambda p: (order.index(p.kind), p.model or ""))
        return "+".join(p.plan_key(main_model, heads=heads) for p in ranked)


def _parse_part(spec: str, text: str) -> VerifierPart:
    name, eq, arg = text.partition("=")
    name, arg = name.strip(), arg.strip()
    if eq and not arg:
        raise _refuse(spec, f"{name}= needs a value after '='")
    model = None
    if name.startswith("model:"):
        model = name[len("model:") :].strip()
        if not model:
            raise _refuse(spec, "model: needs a model name, e.g. model:smollm2-135m or model:self")
        name = "model"
    info = KINDS.get(name)
    if name == "none":
        raise _refuse(spec, "none stacks with nothing; give it alone")
    if info is None:
        close = difflib.get_close_matches(name, [k for k in KINDS if k != "model"], n=2)
        hint = f"did you mean {' or '.join(close)}?" if close else "no verifier has that name"
        raise _refuse(spec, f"unknown verifier {name!r} ({hint})")
    value = arg if eq else None
    if value is not None:
        if info.arg == "none":
            raise _refuse(spec, f"{name} takes no value ({name}={value} given)")
        if info.arg == "count" and not (
            value.isascii() and value.isdigit() and 0 <= int(value) <= info.max_count
        ):
            raise _refuse(
                spec, f"{name}={value}: N must be a whole number from 0 to {info.max_count}"
            )
    return VerifierPart(kind=name, arg=value, model=model)
