"""One export in progress (`ExportRun`) and the steps every format shares: stage, describe, verify, gate, promote.

The format steps (`onnx_steps`, `tflite_steps`) build on these; the orchestrator (`exporter`) only creates the run
and calls the steps the formats table names.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..artifacts import build_metadata, move_artifact, read_metadata, sha256_file, write_sidecar
from ..checkpoint import Checkpoint
from ..errors import ExportError
from ..formats import artifact_name
from .config import ExportConfig
from .manifest import update_manifest
from .staging import journal
from .verify import VerifySet, compare, predict

if TYPE_CHECKING:
    from ..models import ZooNet
    from .board import BoardCheck
    from .tflite_jobs import Conversions

__all__ = ["ExportRun", "Progress"]

Progress = Callable[[str], None]


@dataclass(kw_only=True)
class ExportRun:
    """State shared by the steps of one export."""

    ckpt: Checkpoint
    config: ExportConfig
    out: Path
    stage: Path
    model: ZooNet
    stats: dict
    vset: VerifySet
    ref: np.ndarray | None
    say: Progress
    created: str
    tools: dict
    entries: list[dict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    board: BoardCheck | None = None  # with --verify-on
    conversions: Conversions | None = None  # TFLite conversions running in the background
    _calib: np.ndarray | None = None
    _eval: tuple[np.ndarray, np.ndarray] | None = None
    _marks: list[tuple[str, float]] = field(default_factory=list)
    _logits: dict[tuple, tuple[np.ndarray, str]] = field(default_factory=dict)
    _verified: dict[str, list[dict]] = field(default_factory=dict)
    note: Progress = field(init=False, repr=False)  # set in __post_init__: says a line that is no step

    def __post_init__(self) -> None:
        tell = self.note = self.say  # `note`: a line that reports (wrote, warning, a figure), not a step

        def say(message: str) -> None:  # every step says what it starts: the time to the next step is its cost
            self._marks.append((message, time.perf_counter()))
            tell(message)

        self.say = say

    def timings(self) -> list[dict]:
        """[{"step": message, "seconds": time until the next message}] of this export so far."""
        ends = [t for _, t in self._marks[1:]] + [time.perf_counter()]
        return [{"step": m, "seconds": round(end - t, 3)} for (m, t), end in zip(self._marks, ends)]

    @property
    def target_cpu(self) -> dict | None:
        """The CPU the int8 warnings speak of: the --verify-on board's, else None (this machine's)."""
        return self.board.env if self.board is not None else None

    def warn(self, line: str) -> None:
        """Record a warning for the result and say it now (a note, not a step of its own)."""
        self.warnings.append(line)
        self.note(line)

    def staged(self, fmt: str, precision: str) -> Path:
        """Where an artifact of this format and precision is written before it is verified."""
        return self.stage / artifact_name(self.ckpt.model_name, precision, fmt)

    def metadata(
        self, precision: str, layout: str, input_name: str = "input", output_name: str = "logits", **extra
    ) -> dict:
        """The metadata every artifact of this export carries (checkpoint facts plus `extra`)."""
        return build_metadata(self.ckpt, precision, layout, input_name, output_name, created_utc=self.created, **extra)

    def logits(self, path: Path, images: str = "verify") -> tuple[np.ndarray, str]:
        """This machine's logits of an artifact on the verification images (`images="eval"`: the int8 evaluation
        images) and the runtime that made them, computed once per file version: parity, the board comparison and
        the int8 gates all read them. Keyed by inode and mtime, so a promoted (renamed) file is not run again."""
        if images == "eval" and not self.config.eval_data:
            images = "verify"  # the evaluation images are the verification images
        st = Path(path).stat()
        key = (images, st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        if key not in self._logits:
            self._logits[key] = predict(Path(path), self.vset.images if images == "verify" else self._eval_images())
        return self._logits[key]

    def check(self, path: Path, precision: str) -> dict | None:
        """Parity of a staged artifact; raises ExportError (the file is then never promoted) unless --no-verify."""
        if not self.config.verify:
            return None
        self.say(f"verifying {path.name} on {len(self.vset.images)} {self.vset.source} images")
        assert self.ref is not None  # computed whenever config.verify is set
        got, runtime = self.logits(path)
        report = {"n": len(got), "runtime": runtime, **compare(got, self.ref, precision, path.name)}
        report["images"] = self.vset.source
        if not report["passed"]:
            raise ExportError(f"{path.name} does not match PyTorch: {report['failure']} (use --no-verify to keep it)")
        if self.board is not None:  # the same file on the board, compared with PyTorch and with this machine's run
            report["board"] = self.board.verify(path, precision, self.ref, got, self.config.max_drop)
            if not report["board"]["passed"]:
                raise ExportError(
                    f"{path.name} does not pass on {self.board.name}: {report['board']['failure']} (not written)"
                )
        self._record_verified(path, report)
        return report

    def _record_verified(self, path: Path, report: dict) -> None:
        """The CPU classes `path` passed on, in its sidecar and (at promotion) its manifest entry: an int8 file's
        numerics depend on the CPU that runs it, so an app developer can see where it was checked."""
        from ..quantize.targets import class_of
        from ..runner import cpu_info

        here = cpu_info()
        where = [
            {
                "cpu_class": class_of(here).name,
                "where": "this machine",
                "cpu": here.get("model"),
                "runtime": report["runtime"],
                "emulated": False,
            }
        ]
        board = report.get("board")
        if board is not None and self.board is not None:
            where.append(
                {
                    "cpu_class": class_of(self.board.env).name,
                    "where": self.board.name,
                    "cpu": self.board.env.get("model"),
                    "runtime": board["runtime"],
                    "emulated": self.board.emulated,
                }
            )
        self._verified[path.name] = where
        meta = read_metadata(str(path))
        if meta:
            write_sidecar(path, {**meta, "verified_on": where})

    def promote(self, path: Path, fmt: str, precision: str, **info) -> dict:
        """Rename a verified staged artifact (and its sidecar) into the output folder and bring the manifest up to
        date at once: a run killed later (even by SIGKILL) leaves a manifest that lists what is in the folder. The
        entry is journalled in the staging folder first, for the moment between the rename and the manifest write
        (see `staging`)."""
        entry = {
            "path": path.name,
            "format": fmt,
            "precision": precision,
            "bytes": path.stat().st_size,
            "sha256": sha256_file(path),
            **self._companions(path),
            "params": self.stats["params"],
            "macs": self.stats["macs"],
            **info,
            "verified_on": self._verified.get(path.name),
            "tools": self.tools,
            "created_utc": self.created,
        }
        journal(self.stage, entry, self.manifest_args())
        dest = move_artifact(path, self.out / path.name)
        self.entries.append(entry)
        self.write_manifest()
        self.note(f"wrote {dest}")
        return entry

    @staticmethod
    def _companions(path: Path) -> dict:
        """{"companions": [{"path", "bytes", "sha256"}]} of the files an artifact needs beside it (ncnn's .bin),
        hashed like the artifact itself; {} for one-file formats."""
        from ..runner import companions

        parts = [Path(p) for p in companions(str(path))]
        if not parts:
            return {}
        return {"companions": [{"path": p.name, "bytes": p.stat().st_size, "sha256": sha256_file(p)} for p in parts]}

    def manifest_args(self) -> dict:
        """What `update_manifest` needs besides the entries: the checkpoint, the config, the run's time."""
        ck = self.ckpt
        info = {
            "path": str(ck.path) if ck.path else None,
            "sha256": ck.sha256,
            "model": ck.model_name,
            "dataset": ck.dataset,
            "classes": ck.class_names(),
            "num_classes": ck.num_classes,
            "input_size": ck.input_size,
            "in_channels": ck.in_channels,
            "epoch": ck.epoch,
            "metrics": ck.metrics,
        }
        return {"checkpoint": info, "config": self.config.to_dict(), "created_utc": self.created}

    def write_manifest(self) -> tuple[Path, dict]:
        """Write the output folder's manifest with the entries promoted so far."""
        return update_manifest(self.out, entries=self.entries, **self.manifest_args())

    def calibration(self) -> np.ndarray:
        """The int8 calibration sample (uint8 NHWC at input size), loaded once for every format."""
        if self._calib is None:
            from ..quantize import calibration_images

            c = self.config
            self.say(f"loading {c.calib_size} calibration images from {c.calib_data or self.ckpt.dataset or '?'}")
            assert c.calib_size is not None  # ExportConfig.__post_init__ fills the default
            self._calib = calibration_images(self.ckpt, c.calib_data, c.calib_size, c.seed, c.data_dir)
        return self._calib

    def eval_set(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Held-out labelled images for the fp32-vs-int8 accuracy report: --eval-data's test split (loaded once),
        else the verification sample of the checkpoint's test split; None when there are no labels (random images)."""
        if self.config.eval_data is not None:
            if self._eval is None:
                from ..data import load_dataset

                c = self.config
                data = load_dataset(self.config.eval_data, "test", c.data_dir, channels=self.ckpt.in_channels)
                data = data.sample(c.verify_size, c.seed)
                self._eval = data.images, data.labels
            return self._eval
        if self.vset.labels is None:
            return None
        return self.vset.images, self.vset.labels

    def _eval_images(self) -> np.ndarray:
        from ..data import resize_uint8

        data = self.eval_set()
        if data is None:
            raise ExportError("no labelled evaluation images")
        return resize_uint8(data[0], self.ckpt.input_size)

    def accuracy(self, fp32: Path, int8: Path) -> dict | None:
        """fp32 vs int8 top-1 on the held-out data (None without labels), from the memoised logits."""
        from ..quantize.accuracy import report_from_predictions
        from ..runner import top_classes

        data = self.eval_set()
        if data is None:
            return None
        p32, p8 = (top_classes(self.logits(p, "eval")[0]) for p in (fp32, int8))
        classes = self.ckpt.class_names()
        return report_from_predictions(p32, p8, data[1], classes, self.config.max_drop).to_dict()

    def int8_verdict(self, fp32: Path, int8: Path) -> dict:
        """Whether an int8 candidate passes the gates every int8 artifact must pass (top-1 agreement with PyTorch,
        --max-drop on labelled data), without raising: the default choice tries the next candidate when not."""
        why, verdict = [], {}
        if self.ref is not None:
            par = compare(self.logits(int8)[0], self.ref, "int8", int8.name)
            verdict["agreement_pytorch"] = round(par["top1_agreement"] * 100, 3)
            why += [par["failure"]] if not par["passed"] else []
        acc = self.accuracy(fp32, int8)
        if acc is not None:
            verdict.update(top1=acc["top1_int8"], drop=acc["drop"], agreement_fp32=acc["agreement"])
            verdict["flagged_classes"] = acc["flagged_classes"]  # reported, not a gate: per-class samples are small
            if acc["drop"] > self.config.max_drop + 1e-9:
                why.append(f"loses {acc['drop']:.2f} top-1 points (> --max-drop {self.config.max_drop})")
        return {**verdict, "passed": not why, "why": "; ".join(why) or None}

    def accuracy_gate(self, fp32: Path, int8: Path) -> dict | None:
        """fp32 vs int8 top-1 on held-out data; raises ExportError when the drop exceeds --max-drop."""
        report = self.accuracy(fp32, int8)
        if report is None:
            self.warn(f"warning: no labelled data for {int8.name}: int8 accuracy not measured (pass --eval-data)")
            return None
        self.note(
            f"{int8.name}: top-1 fp32 {report['top1_fp32']:.2f}% int8 {report['top1_int8']:.2f}% "
            f"(drop {report['drop']:+.2f} pts, agreement {report['agreement']:.1f}%)"
        )
        if report["flagged_classes"]:
            worst = sorted(report["per_class"], key=lambda c: -c["drop"])[: len(report["flagged_classes"])]
            listing = ", ".join(f"{c['label']} {c['top1_fp32']:.1f}->{c['top1_int8']:.1f}%" for c in worst)
            self.warn(f"warning: {int8.name}: classes losing more than {self.config.max_drop:g} points: {listing}")
        if report["drop"] > self.config.max_drop + 1e-9:
            raise ExportError(
                f"{int8.name} loses {report['drop']:.2f} top-1 points (> --max-drop "
                f"{self.config.max_drop}); fp32 {report['top1_fp32']:.2f}% vs int8 "
                f"{report['top1_int8']:.2f}%; int8 not written"
            )
        return report
