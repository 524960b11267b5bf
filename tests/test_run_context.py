"""Run context with every result (temperatures, clocks, firmware flags, other load), sustained runs, cool-downs, core
pinning and core types: the readers are faked through their seams (`runner.machine._read`, `context._vcgencmd`), the
affinity is the process's real one."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from sqnxt_edge import runner
from sqnxt_edge.bench.api import BenchRun
from sqnxt_edge.bench.report import rich_table, to_csv, to_markdown
from sqnxt_edge.bench.sustained import plot_sustained, summary_lines
from sqnxt_edge.devices.check import core_advice
from sqnxt_edge.runner import context, machine, sustained
from sqnxt_edge.runner.measuring import Settings, measure_artifact

from builders import write_tiny_onnx

ZONE = "/sys/class/thermal/thermal_zone0/"
FREQ = "/sys/devices/system/cpu/cpu{}/cpufreq/"


class Board:
    """A fake Pi 4's files: one thermal zone (passive trip at 80 C), four cores at 1500 MHz max, /proc/stat that
    another process keeps `other` cores busy in, a firmware answer; every value can change between reads."""

    def __init__(self, monkeypatch, temp_c=50.0, mhz=1500, throttled=0, other=0.0):
        self.temp_c, self.mhz, self.throttled, self.other = temp_c, mhz, throttled, other
        self.t = 0.0  # fake seconds: one a snapshot, half of it this process's CPU time
        self.reads = 0  # firmware reads: one per snapshot
        self.script: list[tuple[int, dict]] = []  # (from this firmware read on, these values)
        monkeypatch.setattr(machine, "_read", self.read)
        monkeypatch.setattr(context, "_vcgencmd", self.vcgencmd)
        monkeypatch.setattr(context, "_now", self.now)
        monkeypatch.setattr(context, "own_cpu_seconds", lambda: 0.5 * self.t)

    def now(self) -> float:
        self.t += 1.0
        return self.t

    def vcgencmd(self) -> str:
        self.reads += 1
        for start, values in self.script:
            if self.reads >= start:
                for k, v in values.items():
                    setattr(self, k, v)
        return f"throttled={hex(self.throttled)}\n"

    def read(self, path: str) -> str:
        files = {
            ZONE + "type": "cpu-thermal",
            ZONE + "temp": str(int(self.temp_c * 1000)),
            ZONE + "trip_point_0_type": "passive",
            ZONE + "trip_point_0_temp": "80000",
            "/proc/loadavg": "0.10 0.20 0.30 1/100 42",
            "/proc/cpuinfo": "".join(f"processor\t: {i}\nCPU part\t: 0xd08\n\n" for i in range(4)),
        }
        for i in range(4):
            files.update(
                {
                    FREQ.format(i) + "scaling_cur_freq": str(self.mhz * 1000),
                    FREQ.format(i) + "cpuinfo_max_freq": "1500000",
                    FREQ.format(i) + "scaling_min_freq": "600000",
                    FREQ.format(i) + "scaling_governor": "ondemand",
                }
            )
        if path == "/proc/stat":  # ours (half a core) and the other processes' share, up to now
            busy = int((0.5 + self.other) * self.t * os.sysconf("SC_CLK_TCK"))
            return f"cpu {busy} 0 0 {10**7 - busy} 0 0 0 0 0 0\ncpu0 1 2 3 4\n"
        return files.get(path, "")


def _between(board: Board, **after) -> dict:
    before = context.snapshot()
    for k, v in after.items():
        setattr(board, k, v)
    return context.between(before, context.snapshot())


def test_the_context_reads_zones_clocks_firmware_and_load(monkeypatch):
    board = Board(monkeypatch, throttled=0x50005)
    snap = context.snapshot()
    assert snap["temps"] == [{"zone": 0, "type": "cpu-thermal", "temp_c": 50.0, "passive_c": 80.0}]
    assert [c["cur_mhz"] for c in snap["clocks"]] == [1500] * 4 and snap["clocks"][0]["governor"] == "ondemand"
    assert snap["loadavg"] == [0.1, 0.2, 0.3] and board.reads == 1
    fw = context.decode_throttled(snap["throttled"])
    assert fw == {"raw": "0x50005", "now": ["under_voltage", "throttled"], "since_boot": ["under_voltage", "throttled"]}


@pytest.mark.parametrize(
    "after, expected",
    [
        ({}, []),
        ({"mhz": 1000}, ["clock_below_max"]),
        ({"temp_c": 82.0}, ["throttled"]),
        ({"throttled": 0x4}, ["throttled"]),
        ({"throttled": 0x10000}, ["under_voltage"]),  # under-voltage happened during the run (the sticky bit)
        ({"other": 0.9}, ["other_load"]),
    ],
)
def test_a_result_taken_hot_throttled_slow_or_beside_load_is_flagged(monkeypatch, after, expected):
    board = Board(monkeypatch, other=after.get("other", 0.0))  # other processes' load: all along
    ctx = _between(board, **{k: v for k, v in after.items() if k != "other"})
    assert ctx["flags"] == expected
    assert ctx["temp_c"]["after"] == after.get("temp_c", 50.0)
    assert ctx["governor"] == "ondemand" and len(ctx["clocks"]) == 4
    assert ctx["load"]["own_cores"] == 0.5 and ctx["load"]["other_cores"] == after.get("other", 0.0)


def test_no_sensors_no_flags(monkeypatch):
    monkeypatch.setattr(machine, "_read", lambda path: "")
    monkeypatch.setattr(context, "_vcgencmd", lambda: "")
    ctx = context.between(context.snapshot(), context.snapshot())
    assert ctx["zones"] == [] and ctx["clocks"] == [] and ctx["firmware"] is None and ctx["flags"] == []


@pytest.fixture
def tiny(tmp_path):
    return write_tiny_onnx(tmp_path / "tiny.onnx")


def test_a_throttle_in_the_middle_of_a_sustained_run_is_found(monkeypatch, tiny, tmp_path):
    """A board that heats up, then throttles from the fourth reading on (clock down, firmware bit): the summary says
    when, the result is flagged, the plot is written."""
    board = Board(monkeypatch)
    board.script = [(3, {"temp_c": 70.0}), (4, {"temp_c": 81.0, "mhz": 1000, "throttled": 0x40004})]
    s = Settings(runtime="onnxruntime", threads=1, warmup=0, duration=1.2, window=0.2)
    result = measure_artifact(str(tiny), s)
    windows, summary = result["windows"], result["sustained"]
    assert len(windows) >= 4 and result["window_s"] == 0.2
    assert summary["throttled"] is True and summary["why"].startswith("firmware: throttled")
    seen = next(i for i, w in enumerate(windows) if w["throttled"])
    assert seen == 2 and windows[seen]["mhz"] == 1000 and windows[0]["mhz"] == 1500  # reads: before, w0, w1, w2 ...
    assert summary["at_s"] == windows[seen]["t_s"] > 0 and "slower_pct" in summary
    assert summary["temp_c"]["first"] == 50.0 and summary["temp_c"]["max"] == 81.0
    assert "throttled" in result["flags"] and "clock_below_max" in result["flags"]
    run = BenchRun(env={"device": "local"}, results=[result])
    (line,) = summary_lines(run)
    assert "THROTTLED at" in line and "tiny.onnx" in line
    png = plot_sustained(run, tmp_path / "s.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_sustained_run_without_events_reports_its_drift(monkeypatch, tiny):
    Board(monkeypatch)
    result = measure_artifact(str(tiny), Settings(runtime="onnxruntime", threads=1, warmup=0, duration=0.6, window=0.2))
    assert result["sustained"]["throttled"] is False and "drift_pct" in result["sustained"]
    assert "throttled" not in result["flags"]


@pytest.mark.parametrize("text, seconds", [("10m", 600.0), ("90s", 90.0), ("1h", 3600.0), ("2.5", 2.5)])
def test_durations(text, seconds):
    assert sustained.parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "10x", "-1s", "0"])
def test_bad_durations_are_one_line(bad):
    with pytest.raises(runner.RunnerError, match="90s, 10m or 1h"):
        sustained.parse_duration(bad)


def test_cooldown_waits_for_the_temperature(monkeypatch):
    temps = iter([70.0, 60.0, 49.5])
    slept = []
    monkeypatch.setattr(context, "hottest_now", lambda: next(temps))
    monkeypatch.setattr(sustained.time, "sleep", slept.append)
    out = sustained.cool_down("50C")
    assert out["temp_c"] == 49.5 and len(slept) == 2 and "note" not in out
    monkeypatch.setattr(context, "hottest_now", lambda: None)
    assert "no thermal zone" in sustained.cool_down("50C")["note"]
    sustained.cool_down("2m")
    assert slept[-1] == 120.0
    with pytest.raises(runner.RunnerError, match="50C or a time like 30s"):
        sustained.parse_cooldown("warm")


def test_settings_reach_the_runner_unchanged():
    s = Settings(cores="0", duration=30.0, window=2.0, cooldown="45C", threads=None)
    argv = s.to_argv()
    assert argv[argv.index("--cores") + 1] == "0" and argv[argv.index("--cooldown") + 1] == "45C"
    args = runner.cli._parser().parse_args([*argv, "x.onnx"])
    assert (args.cores, args.duration, args.window, args.cooldown) == ("0", 30.0, 2.0, "45C")
    assert s.resolve_threads() == 1 and Settings(cores="0-1,4").resolve_threads() == 3
    assert s.extra_seconds(2) == 2 * 2 * (30 + sustained.COOLDOWN_LIMIT)  # auto: up to two engines per artifact
    with pytest.raises(runner.RunnerError, match="core numbers"):
        Settings(cores="a-b").check()


def test_core_lists():
    assert runner.parse_cores("4-7") == [4, 5, 6, 7] and runner.parse_cores("0,2") == [0, 2]
    assert runner.core_list([0, 1, 2, 4, 6, 7]) == "0-2,4,6-7" and runner.core_list([3]) == "3"


RK3588 = {"0xd05": (range(4), 1800000), "0xd0b": (range(4, 8), 2400000)}


def test_a_big_little_cpu_lists_its_core_types_and_big_cores(monkeypatch, cli):
    files = {"/proc/cpuinfo": ""}
    for part, (cpus, khz) in RK3588.items():
        for i in cpus:
            files["/proc/cpuinfo"] += f"processor\t: {i}\nCPU implementer\t: 0x41\nCPU part\t: {part}\n\n"
            files[f"/sys/devices/system/cpu/cpu{i}/cpufreq/cpuinfo_max_freq"] = f"{khz}\n"
    monkeypatch.setattr(machine, "_read", lambda path: files.get(path, ""))
    types = machine.core_types()
    assert [t["name"] for t in types] == ["Cortex-A55"] * 4 + ["Cortex-A76"] * 4
    assert machine.big_cores(types) == [4, 5, 6, 7]
    env = runner.environment()
    assert env["big_cores"] == [4, 5, 6, 7] and len(env["core_types"]) == 8
    advice = core_advice(env)
    assert advice == {"core_kinds": {"Cortex-A55": "0-3", "Cortex-A76": "4-7"}, "big_cores": "4-7"}
    no_clock = [{**t, "max_mhz": None} for t in types]  # no cpufreq: the part decides
    assert machine.big_cores(no_clock) == [4, 5, 6, 7] and machine.big_cores(types[:4]) == []

    import sqnxt_edge.devices as devices

    report = {"env": env, "runtimes": {}, "seconds": 0.1, "pip_install": None, "missing": [], "warnings": []}
    monkeypatch.setattr(devices, "check_device", lambda *a, **k: {**report, **advice})
    r = cli("devices", "check", "rk")
    assert r.exit_code == 0, r.stderr
    assert "Cortex-A76 on 4-7" in r.stdout and "bench --cores 4-7" in r.stdout


def test_cores_pin_the_measuring_process(cli, tiny):
    """--cores 0 on this machine: the measuring child's real affinity (sched_getaffinity, reported back) is {0} and
    one thread runs per pinned core."""
    args = ["--runtime", "onnxruntime", "--warmup", "0", "--runs", "2", "--min-seconds", "0", "--json"]
    ours = os.sched_getaffinity(0)
    r = cli("bench", tiny, "--cores", "0", *args)
    assert r.exit_code == 0, r.stderr
    (res,) = json.loads(r.stdout)["results"]
    assert res["cores"] == [0] and res["threads"] == 1
    assert set(res["context"]) >= {"temp_c", "clocks", "load", "firmware"} and isinstance(res["flags"], list)
    assert res["env"]["affinity"] == [0]  # the runner pinned itself first, its children inherit it
    assert os.sched_getaffinity(0) == ours  # the harness is never pinned
    r = cli("bench", tiny, "--cores", str(os.cpu_count() + 3), *args)
    assert r.exit_code == 1 and "--cores" in r.stderr and "Traceback" not in r.stderr


def _result(name: str, device: str, flags=None) -> dict:
    return {
        "artifact": name,
        "format": "onnx",
        "runtime": "onnxruntime",
        "precision": "fp32",
        "threads": 1,
        "latency_ms": {"mean": 1, "std": 0, "min": 1, "p50": 1, "p90": 1, "p99": 1, "max": 1},
        "device": device,
        **({"flags": flags} if flags else {}),
    }


def test_the_table_shows_flags_and_devices_only_when_they_say_something():
    plain = BenchRun(env={"device": "local"}, results=[_result("a.onnx", "local")])
    assert "flags" not in to_markdown(plain) and "| device" not in to_markdown(plain)
    both = BenchRun(
        env={"device": "a, b", "devices": {"a": {"model": "A72"}, "b": {"model": "A76"}}},
        results=[_result("m.onnx", "a", ["throttled", "other_load"]), _result("m.onnx", "b")],
        errors=[{"artifact": "n.onnx", "device": "b", "error": "connection lost"}],
    )
    md = to_markdown(both)
    assert md.splitlines()[2].startswith("| device | artifact") and "throttled, other load" in md
    assert "2 boards" in md and "error: b: n.onnx: connection lost" in md
    assert "flags" in [c.header for c in rich_table(both).columns]
    assert to_csv(both).splitlines()[0].startswith("device,")


def test_groups_name_several_boards_and_survive_rewrites(tmp_path):
    from sqnxt_edge.devices import Device, add_device, load_groups, remove_device, resolve_boards
    from sqnxt_edge.errors import DeviceError

    path = tmp_path / "devices.toml"
    path.write_text('[devices.a]\nhost = "x"\n\n[devices.b]\nhost = "y"\n\n[groups]\nlab = ["a", "b"]\nall = ["lab"]\n')
    assert resolve_boards(["lab", "a", "local"], path) == ["a", "b", "local"]  # in order, once each
    with pytest.raises(DeviceError, match="names the group 'lab'"):
        resolve_boards(["all"], path)
    add_device(Device(name="a", host="z"), path, force=True)  # a rewrite of the whole file keeps the groups
    remove_device("b", path)
    assert load_groups(path) == {"lab": ["a", "b"], "all": ["lab"]}
    path.write_text('[groups]\nlab = "a"\n')
    with pytest.raises(DeviceError, match="lists of device names"):
        load_groups(path)
