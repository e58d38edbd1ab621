"""From plan to fleet files: ``backplan deploy ray --write`` writes a Serve config and a KubeRay
RayService that validate against Ray's own schema, the shipped KubeRay CRD schema and
Kubernetes' pod schema; a broken one is caught by the same checks."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from backplan.cli import _register, cli
from runtime.errors import UsageError
from runtime.fleet.manifests import (
    rayservice,
    serve_config,
    validate_rayservice,
    validate_serve_config,
)
from runtime.fleet.spec import fleet_from_plan, read_plan

pytestmark = pytest.mark.fleet

_register()  # the commands, as main() adds them


@pytest.fixture(scope="module")
def plan_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("plan") / "plan.json"
    r = CliRunner().invoke(cli, ["plan", "--developers", "120", "--top", "5", "--out", str(out)])
    assert r.exit_code == 0, r.output
    return out


def test_write_validates_and_follows_the_plan(plan_file: Path, tmp_path: Path) -> None:
    r = CliRunner().invoke(
        cli, ["deploy", "ray", "--plan", str(plan_file), "--write", str(tmp_path)]
    )
    assert r.exit_code == 0, r.output
    config = yaml.safe_load((tmp_path / "serve-config.yaml").read_text())
    manifest = yaml.safe_load((tmp_path / "rayservice.yaml").read_text())
    assert (tmp_path / "README.md").read_text().startswith("# backplan fleet")
    validate_serve_config(config)
    validate_rayservice(manifest)
    top = json.loads(plan_file.read_text())["shortlist"][0]
    app = config["applications"][0]
    fleet = app["args"]["fleet"]
    assert fleet["candidate_id"] == top["id"] and fleet["model"] == top["model"]
    assert fleet["max_replicas"] >= top["replicas"]
    dep = app["deployments"][0]
    assert dep["max_ongoing_requests"] == fleet["parallel"] + fleet["queue"]
    assert dep["ray_actor_options"]["num_gpus"] in (0, top["gpus_per_replica"])
    # the manifest carries the same Serve applications
    assert yaml.safe_load(manifest["spec"]["serveConfigV2"])["applications"] == [app]


def test_every_candidate_becomes_valid_files(plan_file: Path) -> None:
    plan = read_plan(plan_file)
    for n in range(1, len(plan["shortlist"]) + 1):
        spec = fleet_from_plan(plan, n)
        validate_serve_config(serve_config(spec))
        validate_rayservice(rayservice(spec, "backplan:test"))


def test_the_checks_catch_a_broken_file(plan_file: Path) -> None:
    spec = fleet_from_plan(read_plan(plan_file), 1)
    config = serve_config(spec)
    config["applications"][0]["deployments"][0]["max_ongoing_requests"] = -3
    with pytest.raises(UsageError, match="Serve config"):
        validate_serve_config(config)
    manifest = rayservice(spec, "backplan:test")
    bad = copy.deepcopy(manifest)
    bad["spec"]["rayClusterConfig"]["workerGroupSpecs"][0]["replicas"] = "two"
    with pytest.raises(UsageError, match="KubeRay"):
        validate_rayservice(bad)
    bad = copy.deepcopy(manifest)
    pod = bad["spec"]["rayClusterConfig"]["headGroupSpec"]["template"]["spec"]
    pod["containers"][0]["ports"] = [{"containerPort": "http"}]
    with pytest.raises(UsageError):
        validate_rayservice(bad)


def test_plan_mistakes_are_one_line(plan_file: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(cli, ["deploy", "ray", "--plan", str(tmp_path / "no.json")])
    beyond = runner.invoke(
        cli, ["deploy", "ray", "--plan", str(plan_file), "--candidate", "99", "--write", "x"]
    )
    not_json = tmp_path / "plan.json"
    not_json.write_text("{")
    broken = runner.invoke(cli, ["deploy", "ray", "--plan", str(not_json)])
    for r, words in ((missing, "backplan plan --out"), (beyond, "shortlist"), (broken, "JSON")):
        assert r.exit_code == 2, r.output
        assert words in r.output and "Traceback" not in r.output


def test_serve_run_of_the_written_config_answers(tmp_path: Path) -> None:
    """Ray's own `serve run` on what `deploy ray --write` wrote (a SmolLM2 plan, one CPU)."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import httpx

    workload = tmp_path / "workload.yaml"
    workload.write_text(
        "developers: 2\nmodels: [smollm2-135m]\nmin_pass_at_1: 0\nmin_tok_s_per_stream: 1\n"
    )
    plan = tmp_path / "plan.json"
    r = CliRunner().invoke(cli, ["plan", "--workload", str(workload), "--out", str(plan)])
    assert r.exit_code == 0, r.output
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "fleet"
    r = CliRunner().invoke(
        cli,
        ["deploy", "ray", "--plan", str(plan), "--write", str(out), "--replicas", "1"]
        + ["--cpus-per-replica", "1", "--port", str(port)],
    )
    assert r.exit_code == 0, r.output
    serve_cli = Path(sys.executable).with_name("serve")
    proc = subprocess.Popen(
        [str(serve_cli), "run", str(out / "serve-config.yaml")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, "RAY_ADDRESS": "local"},
    )
    try:
        deadline, answer = time.monotonic() + 240, None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                answer = httpx.post(
                    f"http://127.0.0.1:{port}/v1/completions",
                    json={"prompt": "def add(a, b):", "max_tokens": 4, "temperature": 0},
                    timeout=30,
                )
                if answer.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        assert answer is not None and answer.status_code == 200, "serve run never answered"
        assert answer.json()["choices"][0]["text"] is not None
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
