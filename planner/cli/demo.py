"""``backplan demo``: the main job for now. Generate with and without verifiers on the default
model and print each run's trace side by side (the profiler and planner issues grow this)."""

from __future__ import annotations

from pathlib import Path

import click

DEMO_PROMPT = (
    "Write a Python function `is_palindrome(s)` that returns True when the string s "
    "reads the same backwards, ignoring case. Reply with only the code."
)

CONFIGS: list[tuple[str, str, str, float]] = [
    # (label, strategy, verifier, temperature)
    ("plain", "plain", "none", 0.0),
    ("threshold+syntax", "threshold", "syntax", 0.0),
    ("threshold+latent(constant)", "threshold", "latent=constant", 0.0),
    ("vgb+syntax", "vgb", "syntax", 0.7),
    ("threshold+model(equal size, constant)", "threshold", "model:{model}=constant", 0.0),
]


@click.command()
@click.option("--model", "-m", default=None, help="Model (default: the embedded SmolLM2-135M).")
@click.option("--prompt", default=DEMO_PROMPT, show_default=False, help="Prompt to use.")
@click.option("--max-tokens", "-n", type=click.IntRange(1, 4096), default=128, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the traces to this JSON file.",
)
def demo(
    model: str | None, prompt: str, max_tokens: int, seed: int, json_path: Path | None
) -> None:
    """Run the default model with and without verifiers; print the traces side by side."""
    from rich.console import Console
    from rich.table import Table

    from runtime.atomic import write_json_atomic
    from runtime.engine.llama import Model
    from runtime.generation import Runtime, RuntimeSettings
    from runtime.models.fetch import model_path
    from runtime.models.registry import DEFAULT_MODEL
    from runtime.samplers.choice import SamplingParams

    console = Console(stderr=True)
    name = model or DEFAULT_MODEL
    main = Model(model_path(name))
    table = Table(title=f"backplan demo on {name} ({max_tokens} tokens max, seed {seed})")
    for col in (
        "config",
        "tokens",
        "tok/s",
        "x plain",
        "rollbacks",
        "rejected",
        "fwd evals/token",
        "verifier fwd",
        "final V",
        "finish",
    ):
        table.add_column(col, justify="left" if col == "config" else "right")
    rows = []
    plain_tok_s = None
    for label, strategy, verifier, temperature in CONFIGS:
        settings = RuntimeSettings(
            model=name,
            strategy=strategy,  # type: ignore[arg-type]
            verifier=verifier.format(model=name),
        )
        console.log(f"running {label}")
        with Runtime(settings, model=main) as rt:
            tokens = rt.prompt_tokens(prompt)
            gen = rt.generate(
                tokens,
                max_tokens=max_tokens,
                seed=seed,
                sampling=SamplingParams(temperature=temperature),
            )
        t = gen.trace
        if plain_tok_s is None:
            plain_tok_s = t.decode_tok_s
        ratio = t.decode_tok_s / plain_tok_s if plain_tok_s else 0.0
        table.add_row(
            label,
            str(t.emitted_tokens),
            f"{t.decode_tok_s:.1f}",
            f"{ratio:.2f}",
            str(t.rollbacks),
            str(t.rejected_tokens),
            f"{t.forward_per_emitted:.2f}",
            str(t.verifier_forward_tokens),
            "-" if t.final_value is None else f"{t.final_value:.2f}",
            t.finish_reason,
        )
        rows.append({"config": label, "text": gen.text, "trace": t.summary()})
    console.print(table)
    for row in rows[:2]:
        console.rule(str(row["config"]))
        console.print(row["text"], markup=False, highlight=False)
    if json_path is not None:
        write_json_atomic(json_path, {"model": name, "prompt": prompt, "runs": rows})
        console.log(f"wrote {json_path}")
