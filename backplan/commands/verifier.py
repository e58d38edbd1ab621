"""``backplan verifier``: collect labelled rollouts, train value heads on their hidden states."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from backplan.options import model_option
from backplan.progress import job_progress
from planner.quality.results import EVAL_MODEL

T = TypeVar("T", int, float)


def _numbers(text: str, cast: Callable[[str], T], option: str, what: str, example: str) -> list[T]:
    """A comma-separated option's values, or one line that says how to write it."""
    from runtime.errors import UsageError

    try:
        return [cast(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise UsageError(
            f"{option} {text!r} is not a list of {what}; write e.g. {example}"
        ) from None


@click.group(name="verifier")
def verifier_group() -> None:
    """Train value heads: collect rollouts (labelled by tests), fit and calibrate heads."""


@verifier_group.command()
@model_option(EVAL_MODEL)
@click.option(
    "--samples",
    type=click.IntRange(0, 64),
    default=4,
    show_default=True,
    help="Sampled answers per problem.",
)
@click.option("--temperature", type=click.FloatRange(0.0, 5.0), default=0.8, show_default=True)
@click.option("--max-tokens", type=click.IntRange(16, 4096), default=384, show_default=True)
@click.option("--limit", type=click.IntRange(1, 164), default=None, help="First N problems.")
@click.option(
    "--label",
    type=click.Choice(["tests", "compiles"]),
    default="tests",
    show_default=True,
    help="A good rollout passes the problem's tests, or (models too small to pass them) "
    "compiles and defines the function.",
)
@click.option(
    "--from-eval",
    "from_eval",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Also import this model's answers from a `backplan eval` results file (repeatable).",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="Rollouts file (JSON lines; resumes).",
)
def collect(
    model: str,
    samples: int,
    temperature: float,
    max_tokens: int,
    limit: int | None,
    label: str,
    from_eval: tuple[Path, ...],
    out: Path,
) -> None:
    """Rollouts of MODEL on HumanEval problems, several samples each, labelled by their tests."""
    from planner.verifier_training.rollouts import CollectConfig
    from planner.verifier_training.rollouts import collect as run_collect

    config = CollectConfig(
        model=model,
        samples=samples,
        temperature=temperature,
        max_tokens=max_tokens,
        label=label,  # type: ignore[arg-type]
    )
    with job_progress(f"collect {model}") as update:
        rollouts = run_collect(
            config,
            out,
            from_eval=from_eval,
            limit=limit,
            progress=lambda done, total: update(done, total),
        )
    passed = sum(r.passed for r in rollouts)
    click.echo(f"{len(rollouts)} rollouts ({passed} passed) in {out}")


@verifier_group.command()
@click.option(
    "--rollouts",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="A rollouts file from `backplan verifier collect`.",
)
@click.option(
    "--reader",
    default=None,
    help="Model whose hidden states the head reads (default: the rollouts' model: a latent "
    "head); another model of the same tokenizer makes a separate-verifier head.",
)
@click.option("--folds", type=click.IntRange(2, 20), default=2, show_default=True)
@click.option(
    "--stride",
    type=click.IntRange(1, 64),
    default=4,
    show_default=True,
    help="Keep every n-th prefix of each rollout (and its last).",
)
@click.option(
    "--c",
    "c",
    type=click.FloatRange(1e-6, 1e6),
    default=0.05,
    show_default=True,
    help="Inverse L2 regularisation strength of the logistic head.",
)
@click.option(
    "--precision",
    type=click.FloatRange(0.5, 1.0),
    default=0.85,
    show_default=True,
    help="Calibrate the threshold so rejected prefixes come from failing answers "
    "at least this often (on held-out problems).",
)
@click.option("--out-dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--name", default=None, help="Head file stem (default: derived from the models).")
def train(
    rollouts: Path,
    reader: str | None,
    folds: int,
    stride: int,
    c: float,
    precision: float,
    out_dir: Path,
    name: str | None,
) -> None:
    """Fit cross-fitted logistic heads on the rollouts' hidden states; report AUC and cost."""
    from planner.verifier_training.cost import generation_cost, pretraining_tokens
    from planner.verifier_training.features import rollout_features
    from planner.verifier_training.fit import cross_fit
    from planner.verifier_training.rollouts import check_trainable, load_rollouts
    from runtime.atomic import prepare_output

    header, rows = load_rollouts(rollouts)
    check_trainable(rollouts, rows, folds)
    main = header["model"]
    reader = reader or main
    stem = name or (f"{main}-latent" if reader == main else f"{main}-by-{reader}")
    prepare_output(out_dir / f"{stem}.crossfit.json")  # refused now, not after the features
    with job_progress(f"hidden states {reader}") as update:
        update(0, len(rows))
        feats = rollout_features(
            main,
            reader,
            rows,
            stride=stride,
            progress=lambda done, total: update(done, total),
        )
    gen_tokens, gen_cpu_s, gen_wall_s = generation_cost(rows)
    manifest = cross_fit(
        feats,
        out_dir,
        name=stem,
        model_name=reader,
        k=folds,
        c=c,
        precision=precision,
        pretraining_tokens=pretraining_tokens(reader),
        generation_tokens=gen_tokens,
        generation_cpu_s=gen_cpu_s,
        generation_wall_s=gen_wall_s,
        data_id=f"{rollouts.name}",
    )
    cost = manifest["training_cost"]
    frac = cost["fraction_of_pretraining"]

    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.3f}"

    click.echo(
        f"{stem}: {manifest['rollouts']} rollouts, {manifest['rows']} prefixes; out-of-fold "
        f"AUC {fmt(manifest['auc_prefix_out_of_fold'])} (prefixes), "
        f"{fmt(manifest['auc_final_out_of_fold'])} (whole answers); thresholds "
        + ", ".join(f"{r['threshold']:.3f}" for r in manifest["fold_reports"])
        + f"; cost {cost['tokens_processed']} tokens, {cost['cpu_s']} CPU-s"
        + (f" = {frac:.2e} of pretraining" if frac else "")
        + f"; heads and manifest in {out_dir}"
    )


@verifier_group.command()
@click.option(
    "--rollouts",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    required=True,
    help="A rollouts file from `backplan verifier collect` with greedy answers imported "
    "(--from-eval) and several samples per problem.",
)
@click.option(
    "--reader",
    default=None,
    help="Model whose hidden states the heads read (default: the rollouts' model).",
)
@click.option(
    "--features",
    "feature_sets",
    default="last,mean,last+mean",
    show_default=True,
    help="Comma-separated whole-answer feature sets to fit heads on: last, mean, last+mean; "
    "@L reads layer L's output instead of the final hidden state (needs --layers; its heads "
    "name the layer and the runtime taps it).",
)
@click.option(
    "--layers",
    default="",
    help="Comma-separated 0-based layers whose outputs the features also tap (llama.cpp's "
    "eval callback), e.g. 12,16,20.",
)
@click.option("--folds", type=click.IntRange(2, 20), default=5, show_default=True)
@click.option("--c", "c", type=click.FloatRange(1e-6, 1e6), default=0.05, show_default=True)
@click.option(
    "--c-grid",
    default="",
    help="Comma-separated L2 strengths (e.g. 0.002,0.005,0.02,0.05): each fold chooses its C "
    "by an inner cross-validation over its own training problems (default: --c everywhere).",
)
@click.option(
    "--precision",
    type=click.FloatRange(0.5, 1.0),
    default=0.85,
    show_default=True,
    help="Calibrate each fold's threshold so answers below it failed at least this often.",
)
@click.option(
    "--max-n", type=click.IntRange(2, 64), default=8, show_default=True, help="Most answers."
)
@click.option(
    "--samples",
    type=click.IntRange(1, 1024),
    default=None,
    help="Use each problem's greedy answer and only its first K sampled ones (default: all): "
    "a larger reader on fewer answers, every problem alike.",
)
@click.option(
    "--cache",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Features file (.npz): read when it matches the rollouts, else computed and written.",
)
@click.option(
    "--examples/--no-examples",
    default=True,
    show_default=True,
    help="Run each answer against its prompt's own examples (in the jail) and replay the "
    "rules that stack them with the head.",
)
@click.option(
    "--checks",
    "checks_cache",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Example-checks file (.json): results kept per answer, only new answers are run.",
)
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the report (replay.json, replay.md) and the cross-fitted answer heads here.",
)
def replay(
    rollouts: Path,
    reader: str | None,
    feature_sets: str,
    layers: str,
    folds: int,
    c: float,
    c_grid: str,
    precision: float,
    max_n: int,
    samples: int | None,
    cache: Path | None,
    examples: bool,
    checks_cache: Path | None,
    out_dir: Path | None,
) -> None:
    """Replay whole-answer rules (best-of-N, regenerate below a threshold, examples stacked
    with a head, VGB over answers) offline on stored rollouts with cross-fitted heads, beside
    the model's own confidence as baselines."""
    import json

    from planner.verifier_training.answer_fit import save_heads
    from planner.verifier_training.answers import parse_feature_set
    from planner.verifier_training.replay import replay_report, report_markdown
    from runtime.atomic import write_text_atomic
    from runtime.errors import UsageError

    sets = [s.strip() for s in feature_sets.split(",") if s.strip()]
    tapped = sorted(set(_numbers(layers, int, "--layers", "layer numbers", "12,16,20")))
    grid = _numbers(c_grid, float, "--c-grid", "numbers", "0.005,0.02,0.05")
    if any(not 0 < g < 1e6 for g in grid):
        raise UsageError(f"--c-grid {c_grid!r}: every C must be above 0 (and below 1e6)")
    for s in sets:
        layer = parse_feature_set(s)[1]
        if layer is not None and layer not in tapped:
            raise UsageError(f"feature set {s!r} reads layer {layer}: add it to --layers")
    with job_progress("answer features") as update:
        report, fits, fit_labels = replay_report(
            rollouts,
            reader=reader,
            feature_sets=sets,
            layers=tapped,
            k=folds,
            c=c,
            c_grid=grid,
            precision=precision,
            max_n=max_n,
            samples=samples,
            cache=cache,
            checks_cache=checks_cache,
            examples=examples,
            progress=lambda done, total: update(done, total),
        )
    text = report_markdown(report)
    click.echo(text)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(out_dir / "replay.json", json.dumps(report, indent=2) + "\n")
        write_text_atomic(out_dir / "replay.md", text)
        stem = f"{report['reader']}-answer"
        for fs, fit in fits.items():
            if fit.heads:  # an offline-only fit (reading log-probabilities) keeps no head
                save_heads(
                    fit,
                    out_dir / "heads",
                    f"{stem}-{fs.replace('+', '-').replace('@', '-layer')}",
                    fit_labels,
                )
        click.echo(f"report and heads in {out_dir}")
