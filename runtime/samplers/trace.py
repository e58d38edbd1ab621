"""The trace every generation returns: counts and timings, hardware independent where it can be."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class PhaseSeconds(BaseModel):
    """Wall-clock seconds spent per phase of one generation."""

    model_config = ConfigDict(extra="forbid")

    prefill_s: float = 0.0
    decode_s: float = Field(0.0, description="Main-model forward passes after the prompt.")
    verify_s: float = Field(0.0, description="Verifier work (its forward passes, heads, checks).")
    sample_s: float = Field(0.0, description="Choosing tokens and walking the tree.")
    total_s: float = 0.0


class Trace(BaseModel):
    """What one generation did. Forward-token counts are exact; times are wall clock."""

    model_config = ConfigDict(extra="forbid")

    strategy: str
    verifier: str
    seed: int | None = None
    prompt_tokens: int = 0
    cached_prompt_tokens: int = Field(
        0, description="Of the prompt, tokens reused from the slot's KV cache (not evaluated)."
    )
    emitted_tokens: int = Field(0, description="Tokens in the final output.")
    generated_tokens: int = Field(0, description="Tokens sampled, including later rolled back.")
    rolled_back_tokens: int = 0
    rollbacks: int = Field(0, description="Rollback events.")
    rejected_tokens: int = Field(0, description="Tokens the verifier flagged.")
    verifier_calls: int = Field(0, description="Times the verifier scored pending tokens.")
    main_forward_tokens: int = Field(0, description="Positions the main model evaluated.")
    main_reevaluated_tokens: int = Field(
        0, description="Positions evaluated again to recover logits not kept after a rollback."
    )
    replayed_tokens: int = Field(
        0, description="Tokens of an earlier candidate written back in place of a rejected one."
    )
    verifier_forward_tokens: int = Field(0, description="Positions a verifier model evaluated.")
    verifier_prompt_tokens: int = Field(0, description="Of those, the prompt's positions.")
    head_evals: int = Field(0, description="Value-head evaluations (latent or separate).")
    walk_steps: int = Field(0, description="VGB: steps of the random walk.")
    answer_values: list[float] = Field(
        default_factory=list,
        description="regenerate: the verifier's value of each whole answer made, in order.",
    )
    code_runs: int = Field(0, description="Sandboxed checks of generated code (examples, tests).")
    code_cpu_s: float = Field(
        0.0, description="CPU seconds those checks used: the host's CPU, not the accelerator's."
    )
    code_wall_s: float = Field(0.0, description="Wall seconds those checks took.")
    isolation: str | None = Field(
        None, description="How the checks were isolated: jail (bubblewrap) or process."
    )
    final_value: float | None = Field(None, description="Verifier value of the output.")
    finish_reason: str = "length"
    seconds: PhaseSeconds = Field(default_factory=PhaseSeconds)

    @property
    def decode_tok_s(self) -> float:
        """Emitted tokens per second of generation after the prompt."""
        busy = self.seconds.total_s - self.seconds.prefill_s
        return self.emitted_tokens / busy if busy > 0 else 0.0

    @property
    def evaluated_prompt_tokens(self) -> int:
        """Prompt tokens the main model evaluated (the cached ones it did not)."""
        return self.prompt_tokens - self.cached_prompt_tokens

    @property
    def forward_per_emitted(self) -> float:
        """Forward-token evaluations (main + verifier, prompt excluded) per emitted token."""
        if self.emitted_tokens == 0:
            return 0.0
        main = self.main_forward_tokens - self.evaluated_prompt_tokens
        ver = self.verifier_forward_tokens - self.verifier_prompt_tokens
        return (main + ver) / self.emitted_tokens

    def summary(self) -> dict[str, object]:
        data = self.model_dump()
        data["decode_tok_s"] = round(self.decode_tok_s, 2)
        data["forward_per_emitted"] = round(self.forward_per_emitted, 3)
        return data
