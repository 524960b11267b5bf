"""Exports stopped by real signals, killed outright, or run twice at once into one folder: the manifest always lists
exactly the verified artifacts in the folder, staging folders of dead exports are removed by the next one (and only
those), and a lock serialises concurrent exports."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from sqnxt_edge.artifacts import OPS_CONFIG_SUFFIX, sha256_file
from sqnxt_edge.export import ExportConfig, export
from sqnxt_edge.export.staging import LOCK_NAME, Owner, _start_ticks, export_lock, make_stage

sys.path.insert(0, str(Path(__file__).parent))
from procs import ROOT, Child
from test_export import MODEL, make_checkpoint

FP32_ONNX, FP32_ORT = f"{MODEL}.fp32.onnx", f"{MODEL}.fp32.ort"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def consistent(out: Path, hidden: set[str] = frozenset()) -> set[str]:
    """Assert the folder holds artifacts + sidecars + manifest only (plus the `hidden` names we expect), and that
    the manifest lists exactly those artifacts with their true size and sha256; return the artifact names."""
    names = {p.name for p in out.iterdir()}
    assert {n for n in names if n.startswith(".")} == set(hidden), names  # no temp file, staging folder or lock
    extra = (".meta.json", OPS_CONFIG_SUFFIX)
    artifacts = {n for n in names if not n.startswith(".") and not n.endswith(extra) and n != "manifest.json"}
    assert {n for n in names if n.endswith(".meta.json")} == {f"{a}.meta.json" for a in artifacts}
    assert {n for n in names if n.endswith(OPS_CONFIG_SUFFIX)} == {
        a + OPS_CONFIG_SUFFIX for a in artifacts if a.endswith(".ort")
    }
    listed = json.loads((out / "manifest.json").read_text())["artifacts"]
    assert set(listed) == artifacts
    for name, entry in listed.items():
        assert entry["bytes"] == (out / name).stat().st_size and entry["sha256"] == sha256_file(out / name)
        assert entry["parity"]["passed"]
    return artifacts


def _export_args(ckpt: Path, out: Path, *extra) -> list:
    return ["export", ckpt, "--format", "onnx,ort", "--fp16", "-o", out, *extra]


@pytest.mark.slow
def test_export_stopped_by_sigterm_keeps_what_it_verified_and_lists_it(ckpt, tmp_path):
    """(SIGHUP takes the same path: tests/test_interrupts.py sends both to a bench.)"""
    sig, out = signal.SIGTERM, tmp_path / "out"
    child = Child(_export_args(ckpt, out))
    child.wait_for(rf"^wrote .*{FP32_ONNX}$")  # the fp32 pair is promoted; fp16 is being made
    child.send(sig)
    assert child.finish() == 128 + sig
    assert child.lines[-1] == f"error: stopped by {signal.Signals(sig).name}"
    assert not any("Traceback" in ln for ln in child.lines)
    assert child.leftovers() == []
    assert {FP32_ONNX, FP32_ORT} <= consistent(out)  # staging folder and lock removed, manifest up to date


@pytest.mark.slow
def test_export_killed_keeps_a_true_manifest_and_the_next_export_removes_only_dead_staging(ckpt, tmp_path):
    out = tmp_path / "out"
    child = Child(_export_args(ckpt, out))
    child.wait_for(rf"^wrote .*{FP32_ONNX}$")
    child.send(signal.SIGKILL)
    assert child.finish() == -signal.SIGKILL
    dead = [p.name for p in out.glob(".export-*")]
    assert len(dead) == 1 and Owner.of(out / dead[0]).pid == child.proc.pid and Owner.of(out / dead[0]).is_gone()
    # SIGKILL runs no cleanup, but the manifest was written at each promote: it lists exactly what is there
    assert {FP32_ONNX, FP32_ORT} <= consistent(out, hidden={dead[0], LOCK_NAME})

    live = make_stage(out)  # an export of this (live) process: must survive
    (out / ".export-abcd1234").mkdir()  # no owner in the name (another version): never touched
    said = []
    export(ckpt, ExportConfig(formats=["onnx"], output_dir=out, verify_size=30), progress=said.append)
    assert f"removed {dead[0]}, left by an export that was killed" in said
    assert {FP32_ONNX, FP32_ORT} <= consistent(out, hidden={live.name, ".export-abcd1234"})


KILL_AT_SECOND_MANIFEST_WRITE = """
import os, signal, sys
from sqnxt_edge.export import ExportConfig, context, export
real, calls = context.ExportRun.write_manifest, []
def write_manifest(self):
    calls.append(1)
    if len(calls) == 2:  # the second artifact is renamed into place; its manifest write has not happened
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self)
context.ExportRun.write_manifest = write_manifest
export(sys.argv[1], ExportConfig(formats=["onnx", "ort"], output_dir=sys.argv[2], verify_size=30))
"""


@pytest.mark.slow
def test_killed_between_rename_and_manifest_write_the_next_export_adopts_the_artifact(ckpt, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AT_SECOND_MANIFEST_WRITE, str(ckpt), str(out)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    listed = json.loads((out / "manifest.json").read_text())["artifacts"]
    assert set(listed) == {FP32_ORT} and (out / FP32_ONNX).is_file()  # the one moment no manifest can cover ...
    onnx_sha = sha256_file(out / FP32_ONNX)

    export(ckpt, ExportConfig(formats=["ort"], output_dir=out, verify_size=30))  # ... the next export repairs
    assert consistent(out) == {FP32_ONNX, FP32_ORT}
    entry = json.loads((out / "manifest.json").read_text())["artifacts"][FP32_ONNX]
    assert entry["sha256"] == onnx_sha and entry["format"] == "onnx" and entry["parity"]["passed"]


@pytest.mark.slow
def test_a_locked_folder_makes_the_next_export_refuse_or_wait(ckpt, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    with export_lock(out, 0, print):  # this test process is "the other export"
        refused = Child(["export", ckpt, "-o", out, "--lock-wait", "0"])
        assert refused.finish() == 1
        assert refused.lines == [
            f"error: another export is writing into {out} (pid {os.getpid()}); waited 0 s "
            "(--lock-wait): try again when it has finished, or export elsewhere with -o"
        ]
        waiting = Child(["export", ckpt, "-o", out, "--lock-wait", "300"])
        waiting.wait_for(rf"^waiting for another export into {out} \(pid {os.getpid()}\)")
        time.sleep(1.0)
        assert waiting.proc.poll() is None and not (out / "manifest.json").exists()
    assert waiting.finish(timeout=600) == 0, "\n".join(waiting.lines[-10:])
    assert consistent(out) == {FP32_ONNX}


@pytest.mark.slow
def test_two_exports_into_one_folder_at_once_both_land_in_the_manifest(ckpt, tmp_path):
    out = tmp_path / "out"
    first = Child(["export", ckpt, "--format", "onnx", "-o", out])
    second = Child(["export", ckpt, "--format", "ort", "-o", out])
    assert first.finish(timeout=900) == 0, "\n".join(first.lines[-10:])
    assert second.finish(timeout=900) == 0, "\n".join(second.lines[-10:])
    assert consistent(out) == {FP32_ONNX, FP32_ORT}  # every artifact listed once, none lost
    waited = [c for c in (first, second) if any(ln.startswith("waiting for another export") for ln in c.lines)]
    assert len(waited) == 1


# -- owners of staging folders (real processes, no export) -----------------------------------------------------------


def test_a_staging_folder_owner_is_gone_only_when_its_process_certainly_ended(tmp_path):
    me = Owner.me()
    assert Owner.of(make_stage(tmp_path)) == me and not me.is_gone()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        child = replace(me, pid=proc.pid, start=_start_ticks(proc.pid))
        assert child.start and not child.is_gone()
        assert replace(child, start=child.start + 1).is_gone()  # the pid now names a later process
        assert not replace(child, host="0badc0de").is_gone()  # another machine: cannot tell, keep it
    finally:
        proc.kill()
        proc.wait()
    assert child.is_gone()
    assert replace(me, boot="0123abcd").is_gone()  # written before this machine's last boot
