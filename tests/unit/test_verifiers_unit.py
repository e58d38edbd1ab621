"""Verifiers and heads without a model: syntax prefixes, fences, head files, stacking."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from runtime.errors import HeadError, UsageError
from runtime.verifiers.head import ValueHead
from runtime.verifiers.stack import StackedVerifier
from runtime.verifiers.syntax import PythonSyntaxVerifier, extract_code, python_prefix_ok


@pytest.mark.parametrize(
    "source, ok",
    [
        ("def f(x):\n", True),  # incomplete: a body must follow
        ("def f(x):\n    return (x +\n", True),  # open bracket
        ('def f():\n    """doc\n', True),  # open docstring
        ("x = = 2\n", False),
        ("def f():\nreturn 1\n", False),  # missing indent
        ("import os\nfrom\n", False),
        ("for i in range(3):\n    print(i)\n", True),
    ],
)
def test_python_prefix_ok(source: str, ok: bool) -> None:
    assert python_prefix_ok(source) is ok


def test_extract_code_from_fences() -> None:
    text = "Here you go:\n```python\ndef f():\n    return 1\n```\nDone."
    code, closed = extract_code(text, "fenced")
    assert closed and code == "def f():\n    return 1\n"
    assert extract_code("no code yet", "fenced") == ("", False)
    assert extract_code("x = 1", "code") == ("x = 1", False)


def _pieces(text: str) -> tuple[list[int], dict[int, bytes]]:
    """Split text into fake one-character tokens (the verifier only needs token -> bytes)."""
    table: dict[int, bytes] = {}
    ids = []
    for i, ch in enumerate(text):
        table[i] = ch.encode()
        ids.append(i)
    return ids, table


def test_syntax_verifier_flags_the_first_bad_line_and_rolls_back() -> None:
    text = "def f(x):\n    return x +* 2\n"
    ids, table = _pieces(text)
    v = PythonSyntaxVerifier(table.__getitem__, mode="code")
    assert v.begin([], None) == 1.0
    v.extend(ids, None)
    values = v.values()
    bad_line_end = text.index("\n", text.index("return"))
    assert (values[:bad_line_end] == 1.0).all()
    assert values[bad_line_end] == 0.0 and values[-1] == 0.0
    v.rollback(len(text) - text.index("+*"))  # back to before the error
    fix_ids = list(range(1000, 1004))
    table.update({1000: b"+", 1001: b" ", 1002: b"2", 1003: b"\n"})
    v.extend(fix_ids, None)
    assert (v.values() == 1.0).all()


def test_head_round_trip_and_checks(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    head = ValueHead.fit_logistic(x, y, threshold=0.4, model_sha256="ab" * 32)
    path = head.save(tmp_path / "h.npz")
    again = ValueHead.load(path)
    np.testing.assert_allclose(again.predict(x), head.predict(x), rtol=1e-6)
    assert again.metadata.threshold == 0.4 and again.n_embd == 8
    pred = again.predict(x)
    assert ((pred > 0.5) == (y == 1)).mean() > 0.9
    with pytest.raises(HeadError, match="hidden size 8"):
        again.check_model(576)
    with pytest.raises(HeadError, match="size 8"):
        again.predict(np.zeros((1, 576), np.float32))
    assert not list(tmp_path.glob("*.partial"))
    # a whole-answer head reading the last and the mean hidden state side by side: 2 x 4 wide
    both = head.with_metadata(head.metadata.model_copy(update={"features": "last+mean"}))
    both.check_model(4)
    with pytest.raises(HeadError, match="hidden size 4"):
        both.check_model(8)


def test_corrupt_head_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(HeadError, match="not a valid backplan head"):
        ValueHead.load(bad)
    with pytest.raises(HeadError, match="does not exist"):
        ValueHead.load(tmp_path / "missing.npz")
    bad.write_bytes(b"PK\x03\x04 a zip header, then nothing")  # a truncated download
    with pytest.raises(HeadError, match="not a valid backplan head"):
        ValueHead.load(bad)
    good = ValueHead.constant(8).save(tmp_path / "good.npz")
    arrays = dict(np.load(good))
    del arrays["w1"]  # metadata without weights
    np.savez(tmp_path / "no-weights.npz", **arrays)
    with pytest.raises(HeadError, match="not a valid backplan head"):
        ValueHead.load(tmp_path / "no-weights.npz")


def test_head_weights_that_do_not_chain_are_refused() -> None:
    md = ValueHead.constant(4).metadata
    ok = ValueHead(md, np.zeros((4, 3)), np.zeros(3), np.zeros((3, 1)), np.zeros(1))  # an MLP
    assert ok.predict(np.zeros((2, 4))).shape == (2,)
    for w1, b1, w2, b2 in (
        (np.zeros(4), np.zeros(1), None, None),  # 1-D weights
        (np.zeros((4, 2)), np.zeros(2), None, None),  # two outputs, no second layer
        (np.zeros((4, 3)), np.zeros(2), np.zeros((3, 1)), np.zeros(1)),  # bias of another width
        (np.zeros((4, 3)), np.zeros(3), np.zeros((3, 1)), None),  # a layer without its bias
    ):
        with pytest.raises(HeadError, match="inconsistent"):
            ValueHead(md, w1, b1, w2, b2)


def test_constant_head_never_rejects() -> None:
    head = ValueHead.constant(16)
    assert (head.predict(np.random.default_rng(1).normal(size=(5, 16))) > 0.9).all()


def test_stack_multiplies_values() -> None:
    ids, table = _pieces("x = = 1\n")
    a = PythonSyntaxVerifier(table.__getitem__, mode="code")
    b = PythonSyntaxVerifier(table.__getitem__, mode="code")
    stack = StackedVerifier([a, b])
    stack.begin([], None)
    stack.extend(ids, None)
    vals = stack.values()
    assert vals[-1] == 0.0 and vals[0] == 1.0
    stack.rollback(3)
    assert stack.stats.calls == 1


def test_verifier_specs_that_name_nothing_or_a_bad_count_are_refused() -> None:
    from runtime.verifiers.factory import build_verifier

    main: Any = SimpleNamespace(piece=None)  # no model: each spec is refused before use
    for spec, needle in (("+", "an empty part"), (" + ", "an empty part")):
        with pytest.raises(UsageError, match=needle):
            build_verifier(spec, main, n_ctx=256)
    for count in ("abc", "-1", "65", "1e9", "²"):
        with pytest.raises(UsageError, match="whole number from 0 to 64"):
            build_verifier(f"examples={count}", main, n_ctx=256)
