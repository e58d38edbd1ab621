"""Sentences a buyer reads: what a candidate trades against the next, what verifiers buy."""

from __future__ import annotations

from planner.recommend.evaluate import Candidate

#: pass@1 within this of another counts as "about the same" in a sentence (not in ranking).
SAME_PASS = 0.02


def describe(c: Candidate) -> str:
    what = f"{c.model} plain" if c.verifier == "none" else f"{c.model} + {c.row}"
    return f"{what} on {c.gpu_count} x {c.gpu_name}"


def _pass(c: Candidate) -> str:
    return (
        "unknown pass@1" if c.pass_at_1 is None else f"{c.pass_at_1:.3f} ({c.quality_provenance})"
    )


def _share(a: float, b: float) -> str:
    return f"{100 * a / b:.0f}%" if b > 0 else "-"


def trade_sentence(a: Candidate, b: Candidate) -> str:
    """``a`` against ``b`` (the next in the shortlist), in one sentence."""
    if a.pass_at_1 is None or b.pass_at_1 is None:
        quality = f"pass@1 {_pass(a)} against {_pass(b)}"
    else:
        diff = a.pass_at_1 - b.pass_at_1
        if abs(diff) < SAME_PASS:
            quality = f"about the same pass@1 ({a.pass_at_1:.3f} vs {b.pass_at_1:.3f})"
        else:
            word = "more" if diff > 0 else "less"
            quality = f"{100 * abs(diff):.1f} points {word} pass@1"
    parts = [f"{_share(a.memory_gb_per_replica, b.memory_gb_per_replica)} of the memory"]
    if a.cost_per_1k_solved_usd is not None and b.cost_per_1k_solved_usd is not None:
        parts.append(
            f"{_share(a.cost_per_1k_solved_usd, b.cost_per_1k_solved_usd)} of the cost per "
            "solved task"
        )
    else:
        parts.append(f"{_share(a.cost_per_mtok_usd, b.cost_per_mtok_usd)} of the cost per token")
    parts.append(f"{_share(a.active_power_w, b.active_power_w)} of the watts")
    return f"against {describe(b)}: {quality} at " + ", ".join(parts[:-1]) + f" and {parts[-1]}"


def verdict(ranked: list[Candidate]) -> str:
    """What the verifiers buy on this workload, from the feasible candidates in rank order:
    the best-ranked verifier configuration that is cheaper per solved task than every plain
    configuration solving at least as many (or, if none is, the best verifier configuration
    against the plain one that beats it). When that rests on a pass@1 not measured here, a
    second sentence says what the measured rows alone show."""
    known = [c for c in ranked if c.cost_per_1k_solved_usd is not None]
    text = _verdict(known)
    chosen = _chosen(known)
    if chosen is not None and chosen.quality_provenance != "measured":
        measured_rows = [
            c for c in known if c.verifier == "none" or c.quality_provenance == "measured"
        ]
        if any(c.verifier != "none" for c in measured_rows):
            text += " On measured verifier rows alone: " + _verdict(measured_rows, lead=False)
    return text


def _rivals(v: Candidate, plain: list[Candidate]) -> list[Candidate]:
    return [c for c in plain if (c.pass_at_1 or 0.0) >= (v.pass_at_1 or 0.0)]


def _pays(v: Candidate, plain: list[Candidate]) -> bool:
    rivals = _rivals(v, plain)
    cost = v.cost_per_1k_solved_usd or 0.0
    return not rivals or all(cost < (p.cost_per_1k_solved_usd or 0.0) for p in rivals)


def _chosen(known: list[Candidate]) -> Candidate | None:
    verified = [c for c in known if c.verifier != "none"]
    plain = [c for c in known if c.verifier == "none"]
    paying = [v for v in verified if _pays(v, plain)]
    return paying[0] if paying else (verified[0] if verified else None)


def _verdict(known: list[Candidate], *, lead: bool = True) -> str:
    plain = [c for c in known if c.verifier == "none"]
    v = _chosen(known)
    if v is None:
        return (
            "No verifier configuration with a known pass@1 meets the constraints, so this plan "
            "cannot say what a verifier buys here."
        )
    assert v.pass_at_1 is not None and v.cost_per_1k_solved_usd is not None
    head = (
        f"{describe(v)} solves {_pass(v)} of HumanEval for {v.cost_per_1k_solved_usd:.3f} USD "
        "per 1,000 solved tasks"
    )
    rivals = _rivals(v, plain)
    if not rivals:
        best = max((c.pass_at_1 or 0.0 for c in plain), default=None)
        tail = (
            f"; no plain configuration within the constraints solves as many (the best plain "
            f"reaches {best:.3f})."
            if best is not None
            else "; no plain configuration meets the constraints."
        )
        opening = "On this workload the verifier buys quality plain models cannot: "
        return (opening if lead else "") + head + tail
    p = min(rivals, key=lambda c: c.cost_per_1k_solved_usd or 0.0)
    assert p.cost_per_1k_solved_usd is not None
    ratio = v.cost_per_1k_solved_usd / p.cost_per_1k_solved_usd
    against = (
        f"the cheapest plain configuration that solves as many, {describe(p)} "
        f"({_pass(p)}, {p.cost_per_1k_solved_usd:.3f})"
    )
    if ratio < 1.0:
        opening = "On this workload the verifier pays: " if lead else ""
        return f"{opening}{head}, {100 * (1 - ratio):.0f}% less than {against}."
    opening = (
        "On this workload no verifier pays for itself: the best verifier configuration, "
        if lead
        else "no verifier row pays: the best, "
    )
    return f"{opening}{head}, costs {100 * (ratio - 1):.0f}% more than {against}."
