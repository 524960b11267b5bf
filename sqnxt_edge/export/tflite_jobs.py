"""TFLite conversions in child processes, started when an export begins and collected by the TFLite steps.

Why: litert-torch spends tens of seconds per conversion in torch.export's Python graph passes, on one core. Started
at once, the fp32 (and fp16) conversions run beside the ONNX family on the other cores, so an export of every format
takes about as long as the slower of the two instead of the sum (int8 is quantized from the fp32 file, in seconds).
The children only convert: the file lands in the export's staging folder and is verified and promoted by the parent
like any other artifact.

A child is its own process group (the parent kills it on any exit, Ctrl-C and SIGTERM included) and asks the
kernel to kill it if the parent dies first (SIGKILL), so no conversion outlives its export.

    python -m sqnxt_edge.export.tflite_jobs JOB.json     # the child side (what the parent runs)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ..errors import ExportError

__all__ = ["Conversions", "parallel_conversions"]


def parallel_conversions() -> bool:
    """Worth it with a second core; SQNXT_EDGE_TFLITE_JOBS=0 converts in the exporting process instead."""
    return os.environ.get("SQNXT_EDGE_TFLITE_JOBS", "1") != "0" and (os.cpu_count() or 1) > 1


class Conversions:
    """One child per precision; `wait(precision)` returns the converted file's path or raises ExportError."""

    def __init__(self, run, precisions: list[str]):
        from ..checkpoint import save_checkpoint

        self.folder = run.stage / ".tflite-jobs"
        self.folder.mkdir()
        ckpt = save_checkpoint(run.ckpt, self.folder / "model.pt")
        self.jobs: dict[str, tuple[subprocess.Popen, Path, Path]] = {}
        try:
            self._start(run, precisions, ckpt)
        except BaseException:  # nothing started here outlives a failed start
            self.close()
            raise
        run.say(
            f"converting to TFLite {' + '.join(precisions)} with litert-torch in {len(precisions)} background "
            "process(es)"
        )

    def _start(self, run, precisions: list[str], ckpt: Path) -> None:
        for precision in precisions:
            dest = run.staged("tflite", precision)
            job = {
                "checkpoint": str(ckpt),
                "precision": precision,
                "dest": str(dest),
                "batch": run.config.fixed_batch or 1,
            }
            spec = self.folder / f"{precision}.json"
            spec.write_text(json.dumps(job), encoding="utf-8")
            log = self.folder / f"{precision}.log"
            with open(log, "wb") as fh:  # one thread each: the work is Python graph passes, and OpenMP threads
                # of three processes spinning on two cores would slow every one of them down many times over
                proc = subprocess.Popen(
                    [sys.executable, "-m", __name__, str(spec)],
                    stdin=subprocess.DEVNULL,
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env={**os.environ, "OMP_NUM_THREADS": "1"},
                )
            self.jobs[precision] = (proc, dest, log)

    def wait(self, precision: str) -> Path:
        """Wait for the background conversion of `precision`; ExportError with its log if it failed."""
        proc, dest, log = self.jobs[precision]
        proc.wait()
        if proc.returncode != 0 or not dest.is_file():
            lines = [ln for ln in log.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
            why = next(
                (ln[len("error: ") :] for ln in reversed(lines) if ln.startswith("error: ")),
                lines[-1] if lines else f"exit code {proc.returncode}",
            )
            raise ExportError(why if why.startswith("TFLite") else f"TFLite conversion ({precision}) failed: {why}")
        return dest

    def close(self) -> None:
        """Stop every child still running (an export that failed or was interrupted)."""
        from ..interrupts import kill_process_group

        for proc, *_ in self.jobs.values():
            if proc.poll() is None:
                kill_process_group(proc, grace=1.0)


def _die_with_parent() -> None:
    try:  # Linux: SIGKILL this child when the exporting process dies, however it dies
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() == 1:  # the parent died before the line above
        sys.exit(1)


def _child(spec: str) -> int:
    _die_with_parent()
    job = json.loads(Path(spec).read_text(encoding="utf-8"))
    try:
        import torch

        from ..checkpoint import load_checkpoint
        from .tflite_export import convert_tflite

        ck = load_checkpoint(job["checkpoint"])
        with torch.no_grad():
            convert_tflite(
                ck.build_model().eval(),
                ck.input_size,
                ck.in_channels,
                job["precision"],
                Path(job["dest"]),
                batch=job["batch"],
            )
    except Exception as exc:  # one line for the parent's error message
        from ..errors import first_line

        print(f"error: {first_line(exc)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
