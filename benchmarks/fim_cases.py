"""Fill-in-the-middle cases cut from real Python files: the standard library of this Python.

A case is one top-level function of a stdlib module (8-60 lines) with a gap where a span was
removed: either one to three whole lines (a simple statement, the editor's cursor at a line's
start) or the rest of a line from inside it (the cursor mid-line: the right-hand side of an
assignment, a call's arguments, a return value). The file the model completes is that function:
prefix + removed + suffix parses, so whether prefix + middle + suffix parses is a fair test.
Cases are drawn with a fixed seed from a fixed list of modules; the Python version is recorded
with the results (another version's stdlib gives other cases).
"""

from __future__ import annotations

import ast
import random
import sysconfig
from dataclasses import asdict, dataclass
from pathlib import Path

MODULES = (
    "bisect", "calendar", "colorsys", "csv", "difflib", "fnmatch", "fractions", "ftplib",
    "getopt", "gettext", "glob", "gzip", "heapq", "hmac", "imaplib", "ipaddress", "mailbox",
    "mimetypes", "netrc", "ntpath", "nturl2path", "opcode", "optparse", "os", "pathlib",
    "pickletools", "platform", "plistlib", "posixpath", "pprint", "quopri", "random",
    "shlex", "shutil", "smtplib", "statistics", "string", "tarfile", "tempfile", "textwrap",
    "tokenize", "trace", "traceback", "uu", "uuid", "warnings", "wave", "weakref", "zipfile",
)  # fmt: skip
SIMPLE = (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Return, ast.Expr, ast.Raise)


@dataclass(frozen=True)
class FimCase:
    id: str  # module:function:line
    kind: str  # "lines" (whole lines removed) or "rest" (the rest of a line)
    prefix: str
    middle: str  # what was removed: the reference answer
    suffix: str


def _function_source(lines: list[str], node: ast.FunctionDef) -> tuple[int, list[str]]:
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
    return start, lines[start : node.end_lineno]


def _cases_of(module: str, path: Path, rng: random.Random) -> list[FimCase]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    tree = ast.parse(text)
    out = []
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or node.end_lineno is None:
            continue
        start, body = _function_source(lines, node)
        if not 8 <= len(body) <= 60:
            continue
        stmts = [
            s
            for s in ast.walk(node)
            if isinstance(s, SIMPLE)
            and s is not node.body[0]  # not the docstring
            and s.end_lineno is not None
            and s.end_lineno - s.lineno < 3
            and s.col_offset > 0
        ]
        if not stmts:
            continue
        s = rng.choice(stmts)
        assert s.end_lineno is not None
        case_id = f"{module}:{node.name}:{s.lineno}"
        a, b = s.lineno - 1 - start, s.end_lineno - start  # the statement's lines in `body`
        before, after = "".join(body[:a]), "".join(body[b:])
        removed = "".join(body[a:b])
        if not removed.strip() or "\t" in removed:
            continue
        value = getattr(s, "value", None)
        if rng.random() < 0.4 and value is not None and value.lineno == s.lineno:
            # the rest of the line from the start of the value (the cursor mid-line)
            line = body[a]
            col = len(line.encode()[: value.col_offset].decode())
            if s.end_lineno == s.lineno and 0 < col < len(line.rstrip("\n")):
                before += line[:col]
                removed, after = line[col:].rstrip("\n"), "\n" + after
                out.append(FimCase(case_id, "rest", before, removed, after))
                continue
        out.append(FimCase(case_id, "lines", before, removed, after))
    return out


def build_cases(n: int = 60, seed: int = 0) -> list[FimCase]:
    """``n`` cases (at most), at most two per module, drawn with ``seed``."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    rng = random.Random(seed)
    per_module = []
    for module in MODULES:
        path = stdlib / f"{module}.py"
        if not path.is_file():
            continue
        cases = _cases_of(module, path, rng)
        rng.shuffle(cases)
        per_module.append(cases[:2])
    picked = [c for pair in per_module for c in pair]
    for c in picked:  # every case is a fair test: with its own middle the file parses
        ast.parse(c.prefix + c.middle + c.suffix)
    return picked[:n]


def parses(case: FimCase, middle: str) -> bool:
    try:
        ast.parse(case.prefix + middle + case.suffix)
    except (SyntaxError, ValueError):
        return False
    return True


def exact(case: FimCase, middle: str) -> bool:
    """The middle is the removed span (ignoring whitespace at its ends)."""
    return middle.strip() == case.middle.strip()


def starts_right(case: FimCase, middle: str) -> bool:
    """The middle begins with the removed span (and may go on past it)."""
    return middle.strip().startswith(case.middle.strip())


if __name__ == "__main__":
    cases = build_cases()
    kinds = {k: sum(c.kind == k for c in cases) for k in ("lines", "rest")}
    print(len(cases), kinds)
    print(asdict(cases[0]))
