"""Fill-in-the-middle: the prompt layout from a real GGUF's FIM tokens, and the syntax verifier's
``fim`` mode fed real tokens (SmolLM2's tokenizer; the verifier judges text, not the model)."""

from __future__ import annotations

import ast
from collections.abc import Iterator

import pytest

from runtime.engine.fim import ContextFile, fim_prompt, fim_supported
from runtime.engine.llama import Model
from runtime.errors import UsageError
from runtime.verifiers.syntax import PythonSyntaxVerifier

BEFORE = "def mean(xs):\n    total = 0\n    for x in xs:\n"
AFTER = "    return total / len(xs)\n"


@pytest.fixture(scope="module")
def qwen() -> Iterator[Model]:
    from runtime.models.fetch import model_path

    model = Model(model_path("qwen2.5-coder-0.5b"))
    yield model
    model.close()


def _verifier(smol: Model, before: str, after: str) -> PythonSyntaxVerifier:
    v = PythonSyntaxVerifier(
        smol.piece,
        prefix_code=before,
        suffix_code=after,
        mode="fim",
        tokenize=lambda text: smol.tokenize(text, add_special=False, parse_special=False),
    )
    v.begin([], None)
    return v


def _feed(smol: Model, v: PythonSyntaxVerifier, text: str) -> list[float]:
    tokens = smol.tokenize(text, add_special=False, parse_special=False)
    v.extend(tokens, None)
    return v.values().tolist()


def test_layout_is_llama_servers(qwen: Model) -> None:
    p = fim_prompt(qwen, BEFORE, AFTER, budget=512, files=[ContextFile("util.py", "X = 1\n")])
    fim = qwen.fim_tokens()
    toks = p.tokens
    # [REP]myproject\n [SEP]util.py\n X = 1\n [SEP]filename\n [PRE]before [SUF]after [MID]
    assert toks[0] == fim["rep"] and toks[-1] == fim["mid"]
    assert toks.count(fim["sep"]) == 2
    pre, suf = toks.index(fim["pre"]), toks.index(fim["suf"])
    assert pre < suf
    assert qwen.detokenize(toks[pre + 1 : suf]) == BEFORE
    assert qwen.detokenize(toks[suf + 1 : -1]) == AFTER
    assert "util.py\nX = 1\n" in qwen.detokenize(toks[:pre])
    assert not p.truncated


def test_a_small_budget_keeps_the_prefixs_end_and_the_suffixs_start(qwen: Model) -> None:
    before = "".join(f"a{i} = {i}\n" for i in range(200))
    after = "".join(f"b{i} = {i}\n" for i in range(200))
    p = fim_prompt(qwen, before, after, budget=120)
    assert len(p.tokens) <= 120 and p.truncated
    fim = qwen.fim_tokens()
    pre, suf = p.tokens.index(fim["pre"]), p.tokens.index(fim["suf"])
    kept_before = qwen.detokenize(p.tokens[pre + 1 : suf])
    kept_after = qwen.detokenize(p.tokens[suf + 1 : -1])
    assert before.endswith(kept_before) and after.startswith(kept_after)
    assert len(kept_before) > len(kept_after) > 0  # 3:1, as llama-server shares the room


def test_a_model_without_fim_tokens_is_refused_with_what_to_use(smol: Model) -> None:
    problem = fim_supported(smol)
    assert problem is not None and "FIM_PRE" in problem and "qwen2.5-coder" in problem
    with pytest.raises(UsageError, match="fill-in-the-middle"):
        fim_prompt(smol, BEFORE, AFTER, budget=512)


def test_the_middle_may_only_end_where_the_file_parses(smol: Model) -> None:
    v = _verifier(smol, BEFORE, AFTER)
    _feed(smol, v, "        total += x")
    assert not v.end_ok()  # no line end: the suffix's "return" would join this line
    _feed(smol, v, "\n")
    assert v.end_ok()  # a whole file
    v.rollback(len(v._pieces))
    _feed(smol, v, "        total += (x\n")
    assert not v.end_ok()  # an open parenthesis: ending here leaves the file broken


def test_a_line_that_breaks_the_code_before_is_rejected_and_blamed_on_its_start(
    smol: Model,
) -> None:
    v = _verifier(smol, BEFORE, AFTER)
    vals = _feed(smol, v, "    return 1\n")  # dedent right after "for ...:" with no body
    assert vals[-1] == 0.0
    start = v.blame(len(vals) - 1)
    assert start == 0  # the line's first token, not the newline that revealed it


def _middle(smol: Model, v: PythonSyntaxVerifier, cut: tuple[int, object]) -> str:
    """The middle as the sampler leaves it after the cut: tokens kept, then those written."""
    kept, written = cut
    return b"".join(v._pieces[:kept]).decode() + smol.detokenize(list(written))  # type: ignore[call-overload]


def test_writing_the_code_after_the_gap_again_completes_the_middle(smol: Model) -> None:
    v = _verifier(smol, BEFORE, AFTER)
    _feed(smol, v, "        total += x\n    return total / len(xs)\n")
    cut = v.complete_at()
    assert cut is not None
    middle = _middle(smol, v, cut)
    assert middle == "        total += x\n"  # a token "\n   " straddling the cut is rewritten
    ast.parse(BEFORE + middle + AFTER)


def test_a_gap_inside_a_line_is_complete_before_the_rest_of_that_line(smol: Model) -> None:
    before, after = "def f(a, b):\n    return max(a,", ")\n\nprint(f(1, 2))\n"
    v = _verifier(smol, before, after)
    _feed(smol, v, " b)\n")
    cut = v.complete_at()
    assert cut is not None
    assert _middle(smol, v, cut) == " b"
    ast.parse(before + " b" + after)


def test_at_the_token_limit_the_middle_is_cut_back_to_where_the_file_parses(
    smol: Model,
) -> None:
    v = _verifier(smol, BEFORE, AFTER)
    _feed(smol, v, "        total += x\n        total = (total")
    cut = v.at_length()
    assert cut is not None
    assert _middle(smol, v, cut) == "        total += x\n"


def test_code_that_is_not_python_is_not_judged(smol: Model) -> None:
    v = _verifier(smol, "function f() {\n  let x = 1;\n", "}\n")
    assert _feed(smol, v, "  return x;\n") == [1.0] * len(v._pieces)
    assert v.end_ok() and v.complete_at() is None and v.hold_from() is None


def test_a_gap_at_a_lines_end_is_complete_at_that_line_end(smol: Model) -> None:
    before, after = "def f(a):\n    x = ", "\n    return x\n"
    v = _verifier(smol, before, after)
    _feed(smol, v, "a + 1\n    y = 2\n")
    cut = v.complete_at()
    assert cut is not None
    assert _middle(smol, v, cut) == "a + 1"
    ast.parse(before + "a + 1" + after)
