"""One meaning per flag: every option of every command and sub-command (click's tree of the real Typer app) is
checked against the others, so a flag or short flag declared twice with two meanings fails here."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import typer

from sqnxt_edge.cli import options
from sqnxt_edge.cli.main import app

# owned by the emulation work (its --profile names the board to emulate; devices add's names its hardware profile)
NOT_SHARED = {("devices emulate", "--profile")}


def _options(command=None, path=()):
    """(command path, click option) for every option in the tree, the root's included."""
    command = command or typer.main.get_command(app)
    for param in command.params:
        if param.param_type_name == "option":
            yield " ".join(path), param
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from _options(sub, (*path, name))


# repeatable twins of a shared option: the same flag and meaning, given once or more (bench measures several boards)
REPEATABLE = {("bench", "--device")}


def _declaration(param, cmd: str = "") -> tuple:
    multiple = False if (cmd, param.opts[0]) in REPEATABLE else param.multiple
    return tuple(param.opts), tuple(param.secondary_opts), param.help, multiple, param.is_flag


def test_the_walk_sees_every_command():
    commands = {cmd for cmd, _ in _options()}
    expected = {"train", "eval", "export", "bench", "pipeline", "demo", "import", "profile", "estimate", "select"}
    assert expected | {"models", "devices list", "devices add", "devices check", "devices emulate"} <= commands


def test_every_flag_means_one_thing_across_commands():
    seen: dict[str, dict[tuple, list[str]]] = defaultdict(lambda: defaultdict(list))
    for cmd, param in _options():
        if param.hidden:
            continue
        for name in (*param.opts, *param.secondary_opts):
            if (cmd, name) not in NOT_SHARED:
                seen[name][_declaration(param, cmd)].append(cmd)
    clashes = {name: dict(decls) for name, decls in seen.items() if len(decls) > 1}
    assert not clashes, (
        "flags declared with more than one meaning (declare them once in cli/options.py):\n"
        + "\n".join(f"{name}: {[(d[0], cmds) for d, cmds in decls.items()]}" for name, decls in clashes.items())
    )


def test_shared_flags_come_from_options_py():
    """A name taken by two commands or more is one of options.py's declarations (same names, same help)."""
    declared = {}
    for alias in vars(options).values():
        info = (getattr(alias, "__metadata__", None) or [None])[0]
        if isinstance(info, typer.models.OptionInfo):
            decls = (info.default, *info.param_decls) if str(info.default).startswith("-") else info.param_decls
            declared[info.help] = {name for decl in decls for name in decl.split("/")}
    users = defaultdict(set)
    for cmd, param in _options():
        if not param.hidden and (cmd, param.opts[0]) not in NOT_SHARED:
            users[_declaration(param, cmd)].add(cmd)
    for decl, cmds in users.items():
        if len(cmds) > 1:
            names, secondary, help_text = decl[:3]
            assert declared.get(help_text) == {*names, *secondary}, f"{names} ({sorted(cmds)}) is not from options.py"


def test_d_is_the_board_everywhere():
    board = [(cmd, p) for cmd, p in _options() if "-d" in p.opts and not p.hidden]
    assert {cmd for cmd, _ in board} >= {"bench", "eval", "pipeline", "profile", "estimate", "select"}
    for cmd, p in board:
        assert p.opts == ["--device", "-d"] and p.name == "device" and "board" in p.help, cmd
    for cmd, p in _options():  # no other option anywhere is called --device except train's old spelling
        if "--device" in p.opts and p.hidden:
            assert cmd == "train"


def test_data_has_no_short_flag_and_one_type():
    data = [p for _, p in _options() if "--data" in p.opts and not p.hidden]
    assert data and all(p.opts == ["--data"] for p in data)
    data_dirs = {p.type_descriptor.annotation for _, p in _options() if "--data-dir" in p.opts}
    assert data_dirs == {Path}


def test_hidden_options_are_the_listed_old_spellings():
    hidden = {(cmd, name) for cmd, p in _options() if p.hidden for name in p.opts}
    assert hidden == set(options.DEPRECATED)
    for _cmd, p in _options():
        if p.hidden:
            assert "Deprecated" in p.help


@pytest.mark.parametrize("cmd", ["export", "pipeline", "demo"])
def test_one_way_to_give_formats(cmd):
    fmt = [p for c, p in _options() if c == cmd and "--format" in p.opts]
    assert len(fmt) == 1 and fmt[0].multiple and fmt[0].opts == ["--format", "-f"]


# -- old spellings: accepted for one release, with one deprecation line on stderr ------------------------------------
# Each line stops at a cheap user mistake after the flag was read (unknown dataset, missing file), so nothing trains.
@pytest.mark.parametrize(
    "argv, old, new",
    [
        (["train", "--device", "cpu", "--data", "imagenet-21k"], "--device", "--torch-device"),
        (["train", "-d", "imagenet-21k"], "-d", "--data"),
        (["train", "-r", "digits-fast", "--data", "imagenet-21k"], "-r", "--recipe"),
        (["train", "--out", "{tmp}/run", "--data", "imagenet-21k"], "--out", "--output"),
        (["pipeline", "{tmp}/missing.pt", "--formats", "onnx,ort"], "--formats", "--format"),
        (["bench", "{tmp}/missing.onnx", "-b", "2"], "-b", "--batch"),
    ],
)
def test_old_spelling_warns_and_still_works(cli, tmp_path, argv, old, new):
    res = cli(*[a.replace("{tmp}", str(tmp_path)) for a in argv])
    lines = res.stderr.strip().splitlines()
    assert lines[0] == f"warning: {old} is deprecated; use {new}", res.stderr
    assert res.exit_code == 1 and lines[-1].startswith("error: ") and "deprecated" not in lines[-1]


def test_old_spelling_reaches_the_library(cli, tmp_path, monkeypatch):
    """The value given under the old name is the one used (not the new option's default)."""
    import sqnxt_edge.training as training
    from sqnxt_edge.errors import SqnxtError

    seen = {}

    def stop(config, progress):
        seen.update(device=config.device, data=config.data, recipe=config.recipe, out=config.out)
        raise SqnxtError("stop here")

    monkeypatch.setattr(training, "train", stop)
    res = cli("train", "--device", "cpu", "-d", "folder", "-r", "seed-cifar", "--out", tmp_path / "r")
    assert res.exit_code == 1 and res.stderr.count("is deprecated") == 4
    assert seen == {"device": "cpu", "data": "folder", "recipe": "seed-cifar", "out": tmp_path / "r"}


def test_train_device_refuses_a_board_name(cli):
    res = cli("train", "--device", "rpi4")
    assert res.exit_code == 1 and "--torch-device" in res.stderr and "'rpi4' is not a torch device" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_old_and_new_spelling_together_is_a_mistake(cli, tmp_path):
    res = cli("pipeline", tmp_path / "x.pt", "--format", "onnx", "--formats", "ort")
    assert res.exit_code == 1 and "give --format only" in res.stderr


def test_eval_d_is_the_board_but_a_dataset_name_still_reads_as_data(cli, tmp_path, reg, tiny_onnx):
    res = cli("eval", tmp_path / "missing.onnx", "-d", "digits", "--devices", reg)
    assert res.exit_code == 1 and "not found" in res.stderr.splitlines()[-1]
    assert "-d is the board (--device) now" in res.stderr and "write --data digits" in res.stderr
    res = cli("eval", tiny_onnx, "-d", "rpi4", "--devices", reg)  # not a dataset: a board, and none is registered
    assert res.exit_code == 1 and "warning" not in res.stderr and "rpi4" in res.stderr


def test_eval_d_names_a_registered_board_even_if_it_is_called_like_a_dataset(cli, tmp_path, reg):
    assert cli("devices", "add", "digits", "--host", "nowhere.invalid", "--devices", reg).exit_code == 0
    res = cli("eval", tmp_path / "missing.onnx", "-d", "digits", "--devices", reg)
    assert res.exit_code == 1 and "warning" not in res.stderr


def test_select_old_b_is_the_budget(cli, monkeypatch):
    import sqnxt_edge.profiling as profiling
    from sqnxt_edge.errors import SqnxtError

    seen = {}

    def stop(device, budget_ms, *args, **kwargs):
        seen["budget"] = budget_ms
        raise SqnxtError("stop here")

    monkeypatch.setattr(profiling, "select", stop)
    res = cli("select", "-b", "12.5")
    assert res.exit_code == 1 and res.stderr.startswith("warning: -b is deprecated; use --budget-ms")
    assert seen == {"budget": 12.5}
    res = cli("select")
    assert res.exit_code == 1 and "--budget-ms" in res.stderr
