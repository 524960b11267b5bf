"""Training stopped by a real SIGTERM or SIGKILL mid-epoch, in a real `python -m sqnxt_edge train` child, resumes
with `--resume` to exactly (bit for bit) the weights of an uninterrupted run."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import pytest
import torch

from sqnxt_edge.checkpoint import load_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from builders import write_color_folder
from procs import Child

EPOCHS = 4
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # the same arithmetic in every child (and polite on 2 cores)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """3 classes x 48 noisy 16 px squares: an epoch lasts long enough (18 steps) to be cut in the middle."""
    return write_color_folder(tmp_path_factory.mktemp("signal-folder"), {"train": 48, "test": 8}, noise=60)


def _train_args(folder: Path, out: Path) -> list:
    return [
        "train",
        "--model",
        "1.0-SqNxt-23",
        "--data",
        "folder",
        "--data-dir",
        folder,
        "--input-size",
        16,
        "--epochs",
        EPOCHS,
        "--batch-size",
        8,
        "--lr",
        0.05,
        "--recipe",
        "seed-cifar",
        "--out",
        out,
    ]


@pytest.fixture(scope="module")
def uninterrupted(folder, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("full") / "run"
    child = Child(_train_args(folder, out), env=ONE_THREAD)
    assert child.finish(timeout=600) == 0, "\n".join(child.lines[-10:])
    return out


def _records(run: Path) -> list[dict]:
    keep = ("epoch", "loss", "train_top1", "test_top1", "test_top5", "lr")
    return [{k: r[k] for k in keep} for r in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())]


def _cut_mid_epoch(folder: Path, out: Path, sig: int) -> Child:
    """Start training, wait until epoch 1 is on disk, then send `sig` a third of an epoch into epoch 2."""
    child = Child(_train_args(folder, out), env=ONE_THREAD)
    t0 = time.monotonic()
    child.wait_for(r"^epoch 1/", timeout=600)
    first_epoch = time.monotonic() - t0
    time.sleep(min(1.0, first_epoch / 3))
    child.send(sig)
    child.finish(timeout=120)
    return child


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_training_cut_by_a_signal_resumes_to_the_same_weights(folder, uninterrupted, tmp_path, sig):
    out = tmp_path / "cut"
    child = _cut_mid_epoch(folder, out, sig)
    assert child.leftovers() == []
    if sig == signal.SIGTERM:  # one line naming the signal and how to continue, exit 128+15
        assert child.proc.returncode == 143
        assert child.lines[-1] == (
            f"stopped by SIGTERM: the last finished epoch is saved; continue with "
            f"`sqnxt-edge train --resume --output {out}`"
        )
        assert not any("Traceback" in ln for ln in child.lines)
    else:
        assert child.proc.returncode == -signal.SIGKILL
    saved = load_checkpoint(out / "last.pt")
    assert 1 <= saved.epoch < EPOCHS  # stopped before the end, with every finished epoch on disk ...
    assert [r["epoch"] for r in saved.extra["history"]] == list(range(1, saved.epoch + 1))  # ... in last.pt, and
    # metrics.jsonl is written just after last.pt: a SIGKILL between the two leaves it one epoch behind, never ahead
    assert len(_records(out)) in ((saved.epoch,) if sig == signal.SIGTERM else (saved.epoch - 1, saved.epoch))

    resumed = Child(["train", "--out", out, "--resume", "--json"], env=ONE_THREAD)
    assert resumed.finish(timeout=600) == 0, "\n".join(resumed.lines[-10:])
    assert json.loads(resumed.stdout)["epochs"] == EPOCHS
    assert _records(out) == _records(uninterrupted)
    a, b = load_checkpoint(uninterrupted / "last.pt"), load_checkpoint(out / "last.pt")
    assert a.state_dict.keys() == b.state_dict.keys()
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)  # bit for bit
    best_a, best_b = load_checkpoint(uninterrupted / "best.pt"), load_checkpoint(out / "best.pt")
    assert best_a.epoch == best_b.epoch
    assert all(torch.equal(best_a.state_dict[k], best_b.state_dict[k]) for k in best_a.state_dict)
