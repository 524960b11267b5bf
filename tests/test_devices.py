"""Device registry, hardware profiles and the `devices` CLI commands that need no board."""

from __future__ import annotations

import json
import platform
import sys

import pytest

from sqnxt_edge.devices import (
    PROFILES,
    Device,
    add_device,
    devices_path,
    get_device,
    get_profile,
    list_profiles,
    load_devices,
    remove_device,
    render_toml,
)
from sqnxt_edge.errors import DeviceError

WEIRD_NAMES = ["rpi4", "my pi", "a$(touch pwned);b", 'quo"te\\back', "ünï-cödé", "tab\tname"]


def test_registry_path_precedence(reg, tmp_path, monkeypatch):
    assert devices_path() == tmp_path / "xdg" / "sqnxt-edge" / "devices.toml"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert devices_path() == tmp_path / "home" / ".config" / "sqnxt-edge" / "devices.toml"
    monkeypatch.setenv("SQNXT_EDGE_DEVICES", str(tmp_path / "env.toml"))
    assert devices_path() == tmp_path / "env.toml"
    assert devices_path(reg) == reg  # the flag beats the environment


@pytest.mark.parametrize("name", WEIRD_NAMES)
def test_add_roundtrip_any_name(reg, name):
    dev = Device(
        name=name,
        host="pi@raspberrypi.local",
        port=2222,
        identity="~/.ssh/k ey",
        python="/opt/py 3/python",
        threads=3,
        profile="rpi4",
        ssh_options=("ProxyJump=bastion", 'SetEnv X="a b"'),
        timeout=30.5,
    )
    add_device(dev, reg)
    back = load_devices(reg)[name]
    assert back == dev
    assert get_device(name, reg).default_threads == 3


def test_add_keeps_comments_and_refuses_duplicates(reg):
    reg.write_text('# my boards\n[devices.a]\nhost = "a.local"  # lab\n')
    add_device(Device(name="b", host="b.local", profile="rpi5"), reg)
    text = reg.read_text()
    assert "# my boards" in text and "# lab" in text
    assert set(load_devices(reg)) == {"a", "b"}
    assert get_device("b", reg).default_threads == PROFILES["rpi5"].cores
    with pytest.raises(DeviceError, match=r"already exists.*--force"):
        add_device(Device(name="b", host="other"), reg)
    assert reg.read_text() == text  # a refused add leaves the file alone
    add_device(Device(name="b", host="other"), reg, force=True)
    assert get_device("b", reg).host == "other" and get_device("b", reg).profile is None
    remove_device("a", reg)
    assert set(load_devices(reg)) == {"b"}
    with pytest.raises(DeviceError, match="no device 'a'"):
        remove_device("a", reg)


@pytest.mark.parametrize(
    "table, match",
    [
        ("[devices.x]\nport = 22\n", "host is required"),
        ('[devices.x]\nhost = "h"\nport = 70000\n', "port must be"),
        ('[devices.x]\nhost = "h"\nport = "22"\n', "port must be a number"),
        ('[devices.x]\nhost = "h"\nthreads = 1.5\n', "whole number"),
        ('[devices.x]\nhost = "-oProxyCommand=touch /tmp/x"\n', "not an ssh target"),
        ('[devices.x]\nhost = "a b"\n', "not an ssh target"),
        ('[devices.x]\nhost = "h"\nprofile = "rpi9"\n', "unknown profile 'rpi9'"),
        ('[devices.x]\nhost = "h"\nhostname = "h"\n', "unknown setting"),
        ('[devices.x]\nhost = "h"\nworkdir = "tmp/$(x)"\n', "workdir must be"),
        ('[devices.x]\nhost = "h"\nssh_options = [1]\n', "ssh_options"),
        ('[devices.x\nhost = "h"\n', "not valid TOML"),
    ],
)
def test_bad_registry_is_one_line(reg, table, match):
    reg.write_text(table)
    with pytest.raises(DeviceError, match=match) as info:
        load_devices(reg)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["rpi4", "rpi5", "jetson-nano"])
def test_profile_name_not_registered_says_how_to_add(reg, name):
    with pytest.raises(DeviceError) as info:
        get_device(name, reg)
    msg = str(info.value)
    assert "built-in hardware profile" in msg
    assert f"sqnxt-edge devices add {name} --host" in msg and f"--profile {name}" in msg


def test_rpi4_how_to_add_line_is_exact(reg, monkeypatch):
    with pytest.raises(DeviceError) as info:
        get_device("rpi4")  # the default registry (under the temp XDG folder), so no --devices in the hint
    assert str(info.value).endswith("sqnxt-edge devices add rpi4 --host pi@raspberrypi.local --profile rpi4")


def test_unknown_device(reg):
    add_device(Device(name="a", host="h"), reg)
    with pytest.raises(DeviceError, match=r"unknown device 'nope' .*: a\); add it with: sqnxt-edge devices add nope"):
        get_device("nope", reg)


def test_python310_without_tomli(reg, monkeypatch):
    reg.write_text('[devices.x]\nhost = "h"\n')
    monkeypatch.setitem(sys.modules, "tomllib", None)
    monkeypatch.setitem(sys.modules, "tomli", None)
    with pytest.raises(DeviceError, match="pip install tomli"):
        load_devices(reg)


# -- profiles ---------------------------------------------------------------------------------------------------

FLOP_PER_CYCLE = {"Cortex-A72": 8, "Cortex-A76": 16, "Cortex-A57": 8}


@pytest.mark.parametrize("name", [n for n in PROFILES if PROFILES[n].peak_gflops_fp32])
def test_profile_peak_is_derived(name):
    p = PROFILES[name]
    assert p.peak_gflops_fp32 == pytest.approx(p.cores * p.clock_ghz * FLOP_PER_CYCLE[p.cpu], rel=0.01)
    assert p.sources and p.arch == "aarch64" and p.neon


def test_profile_facts():
    assert (PROFILES["rpi4"].cpu, PROFILES["rpi4"].cores, PROFILES["rpi4"].clock_ghz) == ("Cortex-A72", 4, 1.5)
    assert PROFILES["rpi4"].dotprod is False and PROFILES["rpi5"].dotprod is True
    assert PROFILES["jetson-nano"].cpu == "Cortex-A57" and 4 in PROFILES["jetson-nano"].memory_gb
    assert set(list_profiles()) >= {"rpi4", "rpi5", "jetson-nano", "generic-arm64", "local"}


def test_local_profile_is_read_from_this_machine():
    local = get_profile("local")
    assert local.arch == platform.machine().lower()
    assert local.cores and local.cores >= 1


# -- CLI --------------------------------------------------------------------------------------------------------


def test_cli_add_list_show_remove(cli, reg):
    name = "lab pi $(touch pwned)"
    r = cli(
        "devices",
        "add",
        name,
        "--host",
        "pi@10.0.0.7",
        "--profile",
        "rpi4",
        "--port",
        "2200",
        "--devices",
        reg,
        "--json",
    )
    assert r.exit_code == 0, r.stderr
    assert json.loads(r.stdout)["device"]["port"] == 2200
    r = cli("devices", "list", "--devices", reg, "--json")
    data = json.loads(r.stdout)
    assert [d["name"] for d in data["devices"]] == [name]
    assert {p["name"] for p in data["profiles"]} >= {"rpi4", "rpi5", "jetson-nano", "generic-arm64", "local"}
    r = cli("devices", "list", "--devices", reg)
    assert r.exit_code == 0 and "rpi5" in r.stdout and "Cortex-A72" in r.stdout
    r = cli("devices", "show", name, "--devices", reg, "--json")
    shown = json.loads(r.stdout)
    assert shown["threads_default"] == 4 and shown["profile_info"]["cpu"] == "Cortex-A72"
    r = cli("devices", "show", name, "--devices", reg)
    assert r.exit_code == 0 and "10.0.0.7" in r.stdout
    r = cli("devices", "add", name, "--host", "x", "--devices", reg)
    assert r.exit_code == 1 and "--force" in r.stderr
    r = cli("devices", "remove", name, "--devices", reg)
    assert r.exit_code == 0 and load_devices(reg) == {}


def test_cli_unregistered_profile_is_one_line(cli, reg):
    r = cli("devices", "check", "rpi4", "--devices", reg)
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "devices add rpi4 --host pi@raspberrypi.local --profile rpi4" in r.stderr.replace(
        "\n", ""
    )


def test_cli_env_var_registry(cli, reg, monkeypatch):
    monkeypatch.setenv("SQNXT_EDGE_DEVICES", str(reg))
    assert cli("devices", "add", "b", "--host", "b.local").exit_code == 0
    assert "b" in load_devices(reg)


def test_render_toml_writes_only_non_defaults():
    text = render_toml(Device(name="x", host="h"))
    assert text == '[devices.x]\nhost = "h"\n'
