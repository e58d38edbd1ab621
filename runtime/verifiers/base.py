"""The incremental verifier interface every verifier implements.

A verifier follows the prefix being generated: ``begin`` with the prompt, ``extend`` with new
tokens, ``rollback`` by n tokens. ``values`` scores the prefixes ending at each token added
since the previous call, in [0, 1] (a process verifier's value: the probability that a
completion from there ends correct). Verifiers may defer work until ``values`` is called, so a
model-based verifier evaluates its pending tokens in one batch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass
class VerifierStats:
    """Work a verifier did; the sampler copies it into the trace."""

    calls: int = 0
    forward_tokens: int = 0
    prompt_tokens: int = 0
    head_evals: int = 0
    seconds: float = 0.0
    code_runs: int = 0
    code_cpu_s: float = 0.0
    code_wall_s: float = 0.0
    isolation: str | None = None


class Verifier(ABC):
    """Scores prefixes incrementally. Subclasses keep their own state in step with the sampler."""

    name: str = "verifier"
    #: True when the verifier reads the main model's last hidden state (the latent head).
    needs_hidden: bool = False
    #: The 0-based layer whose output those hidden states must be (None: the final state).
    hidden_layer: int | None = None
    #: How many tokens the sampler should gather before asking for values (1 = every token).
    preferred_block: int = 1
    #: True when values are graded probabilities (a learned head), False for 0/1 verdicts.
    graded: bool = False

    def __init__(self) -> None:
        self.stats = VerifierStats()

    @property
    def threshold(self) -> float:
        """Values below this count as a rejection for the threshold strategy."""
        return 0.5

    @abstractmethod
    def begin(self, prompt_tokens: Sequence[int], prompt_hidden: np.ndarray | None) -> float:
        """Start a new generation after ``prompt_tokens``; return V(prompt)."""

    @abstractmethod
    def extend(self, tokens: Sequence[int], hidden: np.ndarray | None) -> None:
        """Append tokens (with the main model's hidden states, shape (n, n_embd), if needed)."""

    @abstractmethod
    def values(self) -> np.ndarray:
        """Values of the prefixes ending at each token extended since the last call."""

    @abstractmethod
    def rollback(self, n: int) -> None:
        """Forget the last ``n`` tokens (scored or not)."""

    def restart_point(self, flagged: int) -> int | None:
        """Where to regenerate from after rejecting the token at index ``flagged``.

        None (the default): the rejection is about that token, so the sampler's own rollback
        applies. A whole-answer check (the prompt's examples) returns an earlier position.
        """
        return None

    def blame(self, flagged: int) -> int:
        """The token to ban (and regenerate from) for a rejection of the prefix ending at
        ``flagged``: that token by default; a line-level check can blame the line's start."""
        return flagged

    def replacement(self, flagged: int) -> Sequence[int] | None:
        """Tokens to write from :meth:`restart_point` instead of regenerating (None: regenerate).

        A whole-answer check that has spent its regenerations hands back the best earlier
        candidate when the last one did worse.
        """
        return None

    def at_length(self) -> tuple[int, Sequence[int]] | None:
        """Generation reached its token limit while an answer is still held (unjudged).

        ``(position, tokens)`` to write there instead (a whole-answer check hands back the best
        answer it judged earlier), or None (the default) to keep what was generated.
        """
        return None

    def end_ok(self) -> bool:
        """Whether the answer may end after its current tokens (end of text was sampled).

        False keeps generation going: the sampler bans ending there. A check of the whole
        answer in its place (a fill-in-the-middle's file must parse) says no; the default,
        and every prefix-only verifier, says yes.
        """
        return True

    def complete_at(self) -> tuple[int, Sequence[int]] | None:
        """Where the answer is complete and generation should stop: ``(position, tokens)``,
        the tokens kept and those to write after them (what follows is cut; None, the
        default: go on). A fill-in-the-middle middle is complete where the model starts
        writing the code after the gap again."""
        return None

    def answer_failures(self) -> int | None:
        """Checks the finished answer now in place failed (0: all held), for a strategy that
        chooses among whole answers (regenerate ranks fewest failures first, then the value
        at the answer's end); None, the default, where this verifier runs no checks on whole
        answers or the prompt states none."""
        return None

    @property
    def answer_threshold(self) -> float:
        """The value at its end a whole answer needs to be kept by such a strategy."""
        return self.threshold

    def hold_from(self) -> int | None:
        """First generated position a later rejection may still take back (None: no hold).

        The sampler streams nothing from there until the verifier has judged it.
        """
        return None

    def close(self) -> None:  # noqa: B027 - optional hook, most verifiers hold nothing
        """Release resources (a verifier model's context)."""
