"""The run-context capture paths on an emulated Raspberry Pi 4 (QEMU user mode): the board folder's thermal zone,
cpufreq files and `vcgencmd` are what the runner reads there, and a sustained bench sees a throttle event that the
fake firmware starts in the middle of the run."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from sqnxt_edge.devices import emulate, rootfs
from sqnxt_edge.devices.rootfs import TOOLS

from builders import write_tiny_onnx
from needs import need

pytestmark = pytest.mark.slow


@pytest.fixture
def hot(tmp_path):
    """An emulated rpi4 of its own (its files are changed here), on the session's cached user space."""
    need("qemu", all(rootfs._which(t) is not None for t in TOOLS), "needs qemu-user-static and debootstrap")
    cache = Path(os.environ.get("SQNXT_EDGE_TEST_CACHE") or os.environ["SQNXT_EDGE_CACHE"])
    devices = tmp_path / "devices.toml"
    device, _ = emulate.emulate_device("hot", "rpi4", devices, cache=cache)
    board = Path(device.rootfs)
    try:
        yield board, devices
    finally:
        rootfs.rmtree(board)  # this board only: the user space stays for the others


def test_a_throttle_mid_run_on_the_emulated_board_is_found(cli, hot, tmp_path):
    board, devices = hot
    zone, fw = board / "sys/class/thermal/thermal_zone0", board / "firmware"
    assert (zone / "temp").read_text().strip() == "45000" and os.access(fw / "vcgencmd", os.X_OK)
    freq = [board / f"sys/devices/system/cpu/cpu{i}/cpufreq/scaling_cur_freq" for i in range(4)]
    for f in freq:
        f.write_text("1500000\n")  # at full clock until the firmware throttles
    # the fourth firmware reading (the run's: before, then one per window) finds the board hot and throttled
    q = shlex.quote
    (fw / "vcgencmd").write_text(
        "#!/bin/sh\n"
        f"n=$(cat {q(str(fw / 'count'))} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {q(str(fw / 'count'))}\n"
        'if [ "$n" -ge 4 ]; then\n'
        f"  echo 85000 > {q(str(zone / 'temp'))}\n"
        + "".join(f"  echo 1000000 > {q(str(f))}\n" for f in freq)
        + f"  echo 0x40004 > {q(str(fw / 'throttled'))}\n"
        "fi\n"
        f"echo throttled=$(cat {q(str(fw / 'throttled'))})\n"
    )
    art = write_tiny_onnx(tmp_path / "tiny.onnx", batch=1, metadata=False)
    r = cli(
        "bench",
        art,
        "--device",
        "hot",
        "--devices",
        devices,
        "--runtime",
        "onnxruntime",
        "--warmup",
        "0",
        "--duration",
        "4s",
        "-o",
        tmp_path / "r.json",
        "--plot",
        tmp_path / "s.png",
    )
    assert r.exit_code == 0, r.stderr
    assert "THROTTLED at" in r.stdout and "EMULATED" in r.stdout
    (res,) = json.loads((tmp_path / "r.json").read_text())["results"]
    windows, summary = res["windows"], res["sustained"]
    assert len(windows) >= 3 and windows[0]["temp_c"] == 45.0 and windows[0]["mhz"] == 1500
    assert windows[0]["throttled"] == [] and windows[-1]["throttled"] == ["throttled"] and windows[-1]["mhz"] == 1000
    assert summary["throttled"] is True and summary["at_s"] > 0 and summary["temp_c"]["max"] == 85.0
    assert {"throttled", "clock_below_max"} <= set(res["flags"])
    ctx = res["context"]
    assert ctx["temp_c"] == {"before": 45.0, "after": 85.0} and ctx["zones"][0]["passive_c"] == 80.0
    assert ctx["firmware"]["before"]["raw"] == "0x0" and ctx["firmware"]["after"]["since_boot"] == ["throttled"]
    assert res["env"]["emulated"] is True and res["emulated"] is True
    assert (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
