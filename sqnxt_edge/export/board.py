"""`export --verify-on NAME`: every staged artifact also runs on a registered board (a real one over SSH, or an
emulated one) through the same runner, and must meet the same criteria there before it is promoted.

The board's CPU (read from the board, never assumed) names its CPU class, which joins the artifact's `verified_on`;
a file made with `--int8-target CLASS` for another class than this machine's must be verified on a board of that
class. On the board, the verification images' logits are compared with PyTorch's by the same `verify.compare`; an
int8 artifact must also agree with this machine's run of the same file on >= 99% of top-1 classes and stay within
--max-drop of PyTorch's top-1 on the labelled images.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import runner
from ..artifacts import atomic_write
from ..errors import ExportError
from .verify import VerifySet, compare

__all__ = ["BoardCheck", "BOARD_INT8_AGREEMENT"]

BOARD_INT8_AGREEMENT = 0.99  # int8 top-1 on the board vs this machine, same file: kernels may differ, classes barely


class BoardCheck:
    """A board the export verifies on: its environment (read once), and the verification images staged for it."""

    def __init__(self, name: str, devices_file, vset: VerifySet, stage: Path, say):
        from ..devices import Target, runner_env

        self.target = Target(name, devices_file)
        if self.target.device is None:
            raise ExportError("--verify-on takes a registered board (real or emulated); this machine always verifies")
        self.device = self.target.device
        self.say = say
        say(f"reading {name}'s CPU and runtimes")
        info = runner_env(self.device)
        self.env, self.runtimes = info.get("env", {}), info.get("runtimes", {})
        self.labels = vset.labels
        size = vset.images.shape[1]
        labels = vset.labels if vset.labels is not None else np.zeros(len(vset.images), np.int64)

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as fh:
                arrays = {"labels": np.asarray(labels, np.int64), f"images_{size}": vset.images}
                np.savez(fh, **arrays)  # type: ignore[arg-type]  # numpy's stub checks **arrays against allow_pickle: bool

        self.data = atomic_write(stage / "board-verify.npz", write)

    @property
    def name(self) -> str:
        """The board's registry name."""
        return self.device.name

    @property
    def emulated(self) -> bool:
        """True when the board is emulated on this machine."""
        return bool(self.env.get("emulated"))

    def _logits(self, path: Path) -> tuple[np.ndarray, str]:
        where = f"{self.name} (emulated)" if self.emulated else self.name
        self.say(f"verifying {path.name} on {where}")
        report = self.target.run([path], runner.Settings(latency=False, logits=True, threads=None), self.data)
        result = (report.get("results") or [{}])[0]
        if "error" in result or "logits" not in result:
            raise ExportError(f"{path.name} cannot run on {self.name}: {result.get('error', 'no logits returned')}")
        return np.asarray(result["logits"], np.float32), f"{result.get('runtime')} {result.get('runtime_version')}"

    def verify(self, path: Path, precision: str, ref: np.ndarray, here: np.ndarray, max_drop: float) -> dict:
        """The board's parity report for `path` (`here`: this machine's logits of the same file)."""
        got, runtime = self._logits(path)
        report = {
            "device": self.name,
            "emulated": self.emulated,
            "runtime": runtime,
            "cpu": f"{self.env.get('model')} ({self.env.get('arch')})",
            **compare(got, ref, precision, f"{path.name} on {self.name}"),
        }
        reasons = [report["failure"]] if report["failure"] else []
        if got.shape == here.shape:
            report["max_abs_diff_vs_here"] = float(np.abs(got.astype(np.float64) - here).max())
            report["top1_agreement_vs_here"] = float(np.mean(runner.top_classes(got) == runner.top_classes(here)))
        if precision == "int8" and report.get("top1_agreement_vs_here", 0.0) < BOARD_INT8_AGREEMENT:
            reasons.append(
                f"int8 top-1 agrees with this machine's on {report.get('top1_agreement_vs_here', 0):.1%} "
                f"< {BOARD_INT8_AGREEMENT:.0%} of images"
            )
        if self.labels is not None:
            top1 = float(np.mean(runner.top_classes(got) == self.labels) * 100)
            ref_top1 = float(np.mean(runner.top_classes(ref) == self.labels) * 100)
            report["accuracy"] = {
                "top1": round(top1, 3),
                "top1_pytorch": round(ref_top1, 3),
                "drop": round(ref_top1 - top1, 3),
            }
            if precision == "int8" and ref_top1 - top1 > max_drop + 1e-9:
                reasons.append(f"loses {ref_top1 - top1:.2f} top-1 points against PyTorch (> --max-drop {max_drop})")
        report.update(passed=not reasons, failure="; ".join(reasons) or None)
        return report
