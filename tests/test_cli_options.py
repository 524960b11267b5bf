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


def _declaration(param) -> tuple:
    return tuple(param.opts), tuple(param.secondary_opts), param.help, param.multiple, param.is_flag


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
                seen[name][_declaration(param)].append(cmd)
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
            users[_declaration(param)].add(cmd)
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
    for cmd, p in _options():
        if p.hidden:
            assert "Deprecated" in p.help


@pytest.mark.parametrize("cmd", ["export", "pipeline", "demo"])
def test_one_way_to_give_formats(cmd):
    fmt = [p for c, p in _options() if c == cmd and "--format" in p.opts]
    assert len(fmt) == 1 and fmt[0].multiple and fmt[0].opts == ["--format", "-f"]
