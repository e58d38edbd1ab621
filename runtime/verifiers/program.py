"""The definitions in a generated answer, without the scaffolding a chat model writes around them.

Asked for a function, a small model often goes on after it: ``print(f(5))`` calls, a
``check_solution()`` with its own (sometimes wrong) asserts, an ``if __name__ == "__main__":``
block, and, when it runs out of tokens there, a truncated line that makes the whole program a
syntax error. What is judged is the function, so both the examples verifier and the HumanEval
harness test :func:`definitions_only`: the longest prefix of the code that parses (cut where a
top-level line starts), keeping imports, classes, functions and the top-level assignments those
functions read, in their original text and order. This is what EvalPlus's ``sanitize`` does for
chat models' answers; the same rule applies to every configuration compared.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence

_TOP_LEVEL = re.compile(r"^(?=\S)", re.MULTILINE)

#: What Python's parser raises besides SyntaxError when a text is beyond it (thousands of
#: nested brackets, or a line of 10,000 minus signs): such a text is not judged, never a crash.
PARSER_GAVE_UP = (ValueError, MemoryError, RecursionError, OverflowError)


def parseable_prefix(code: str) -> tuple[str, ast.Module] | None:
    """The longest prefix of ``code`` ending before a top-level line (or at its end) that parses."""
    cuts = [len(code)] + [m.start() for m in _TOP_LEVEL.finditer(code)][::-1]
    for cut in cuts:
        head = code[:cut]
        try:
            return head, ast.parse(head)
        except (SyntaxError, *PARSER_GAVE_UP):
            continue
    return None


def _loaded_names(nodes: Sequence[ast.AST]) -> set[str]:
    return {
        n.id
        for node in nodes
        for n in ast.walk(node)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)
    }


def _targets(node: ast.Assign | ast.AnnAssign) -> set[str] | None:
    """Names an assignment binds; None if it binds anything but plain names."""
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    names: set[str] = set()
    for t in targets:
        elts = t.elts if isinstance(t, ast.Tuple | ast.List) else [t]
        for e in elts:
            if not isinstance(e, ast.Name):
                return None
            names.add(e.id)
    return names


def definitions_only(code: str) -> str:
    """Imports, classes, functions and the assignments they read, from the parseable prefix.

    Returns ``code`` unchanged when no prefix parses (the caller's run then reports the
    syntax error).
    """
    found = parseable_prefix(code)
    if found is None:
        return code
    head, tree = found
    defs = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    kept_defs = [n for n in tree.body if isinstance(n, defs)]
    read = _loaded_names(kept_defs)
    keep: list[ast.stmt] = []
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom, *defs)):
            keep.append(node)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            names = _targets(node)
            if names and names <= read:
                keep.append(node)
    lines = head.splitlines()
    parts = []
    for node in keep:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        last = node.end_lineno or node.lineno
        parts.append("\n".join(lines[first - 1 : last]))
    return "\n".join(parts) + "\n" if parts else ""


def defines(code: str, name: str) -> bool:
    """True when ``code`` parses and defines a top-level function ``name``."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, *PARSER_GAVE_UP):
        return False
    return any(
        isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == name for n in tree.body
    )


def program_for(prompt_src: str, answer: str, entry: str) -> str:
    """The program to run for ``answer`` to a prompt asking for ``entry``: when the answer
    defines it, its definitions with the prompt's imports; otherwise the answer is a body and
    is appended to the prompt's code."""
    if not re.search(rf"^\s*def\s+{re.escape(entry)}\s*\(", answer, re.MULTILINE):
        return prompt_src + answer
    kept = definitions_only(answer)
    if defines(kept, entry):
        answer = kept  # the answer's own prints, asserts and a truncated tail are not judged
    header = "\n".join(
        line for line in prompt_src.splitlines() if line.startswith(("import ", "from "))
    )
    return f"{header}\n{answer}" if header else answer
