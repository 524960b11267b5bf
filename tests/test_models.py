"""The zoo against the spec: exact parameter counts, MACs, the shape plan, and the structural details."""

import json

import pytest
import torch
from torch import nn

from sqnxt_edge.errors import SqnxtError, UnknownModelError
from sqnxt_edge.models import create_model, get_spec, list_models, model_stats, resolve_name, supports
from sqnxt_edge.models.squeezenext import SqueezeNextBlock

ALL = list_models()
SQNXT = list_models("squeezenext")


@pytest.mark.parametrize(
    "name, size, params",
    [
        ("1.0-SqNxt-23", 227, 717_280),
        ("1.0-SqNxt-23v5", 227, 930_016),
        ("2.0-SqNxt-23", 227, 2_361_728),
        ("SqueezeNet-1.0", 224, 1_248_424),
        ("SqueezeNet-1.1", 224, 1_235_496),
    ],
)
def test_parameter_counts_match_the_spec(name, size, params):
    assert model_stats(create_model(name, 1000, size), size).params == params


def test_sqnxt23_parameter_breakdown_and_macs():
    model = create_model("1.0-SqNxt-23", 1000, 227)
    conv = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d))
    fc = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear))
    bn = sum(p.numel() for m in model.modules() if isinstance(m, nn.BatchNorm2d) for p in m.parameters())
    assert (conv, fc, bn) == (577_728, 128_000, 11_552)
    stats = model_stats(model, 227, layers=True)
    assert stats.macs == pytest.approx(278.0e6, rel=0.01)
    stem = next(layer for layer in stats.layers if layer.name == "stem.0.0")
    assert stem.macs == pytest.approx(115.9e6, rel=0.01)
    assert sum(layer.macs for layer in stats.layers) == stats.macs


@pytest.mark.parametrize("name, macs", [("SqueezeNet-1.0", 818.9e6), ("SqueezeNet-1.1", 349.2e6)])
def test_squeezenet_macs(name, macs):
    assert model_stats(create_model(name, 1000, 224), 224).macs == pytest.approx(macs, rel=0.001)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("size", [32, 64, 227])
def test_every_variant_runs_at_every_size(name, size):
    if not supports(name, size):  # a family with a fixed pooling window: one line, no traceback
        with pytest.raises(SqnxtError, match=rf"^{name} takes .* only, not {size} px"):
            create_model(name, num_classes=7, input_size=size)
        assert get_spec(name).sizes is not None
        return
    model = create_model(name, num_classes=7, input_size=size).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, size, size)).shape == (2, 7)


def _stage_outputs(model, size):
    shapes = []
    hooks = [stage.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:]))) for stage in model.stages]
    stem = []
    hooks.append(model.stem.register_forward_hook(lambda m, i, o: stem.append(tuple(o.shape[1:]))))
    with torch.no_grad():
        model.eval()(torch.zeros(1, 3, size, size))
    for h in hooks:
        h.remove()
    return stem[0], shapes


@pytest.mark.parametrize(
    "name, size, stem, spatial",
    [
        ("1.0-SqNxt-23", 227, (64, 55, 55), [55, 28, 14, 7]),
        ("1.0-SqNxt-23v5", 227, (64, 56, 56), [56, 28, 14, 7]),
        ("2.0-SqNxt-44", 227, (64, 55, 55), [55, 28, 14, 7]),
        ("1.0-SqNxt-23", 64, (64, 32, 32), [32, 16, 8, 4]),
        ("1.5-SqNxt-23v5", 64, (64, 32, 32), [32, 16, 8, 4]),
        ("1.0-SqNxt-23", 32, (64, 32, 32), [32, 16, 8, 4]),
        ("2.0-SqNxt-34", 32, (64, 32, 32), [32, 16, 8, 4]),
    ],
)
def test_stage_shape_plan(name, size, stem, spatial):
    model = create_model(name, 10, size)
    got_stem, stages = _stage_outputs(model, size)
    width = model.cfg.width
    assert got_stem == stem
    assert stages == [(int(c * width), s, s) for c, s in zip((32, 64, 128, 256), spatial)]


def test_stem_follows_input_size_and_can_be_overridden():
    assert create_model("1.0-SqNxt-23", 10, 227).stem_kind == "imagenet"
    assert create_model("1.0-SqNxt-23", 10, 64).stem_kind == "tiny"
    assert create_model("1.0-SqNxt-23", 10, 32).stem_kind == "cifar"
    forced = create_model("1.0-SqNxt-23", 10, 32, stem="imagenet")
    assert forced.stem[0][0].kernel_size == (7, 7)
    assert create_model("1.0-SqNxt-23v5", 10, 227).stem[0][0].kernel_size == (5, 5)
    assert create_model("1.0-SqNxt-23", 10, 32, in_channels=1).stem[0][0].in_channels == 1


@pytest.mark.parametrize("name", SQNXT)
def test_squeezenext_structure(name):
    model = create_model(name, 1000, 227)
    cfg = model.cfg
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.bias is None for c in convs)
    assert model.fc.bias is None
    assert all(m.ceil_mode for m in model.modules() if isinstance(m, nn.MaxPool2d))
    assert model.stem[0][0].out_channels == 64 and model.head[0].out_channels == 128
    assert [len(s) for s in model.stages] == list(cfg.depths)
    for stage in model.stages:
        for b, block in enumerate(stage):
            assert (block.proj is not None) == (b == 0)
            assert block.transition == (("v5" if cfg.v5_transition else "projection") if b == 0 else None)
            assert block.sep_first == ("3x1" if b % 2 == 0 else "1x3")
            assert block.sep1[0].kernel_size == ((3, 1) if b % 2 == 0 else (1, 3))
            assert block.sep2[0].kernel_size == ((1, 3) if b % 2 == 0 else (3, 1))
            grouped = {block.reduce1[0].groups, block.sep1[0].groups, block.sep2[0].groups}
            assert grouped == {cfg.groups}
            assert block.reduce2[0].groups == block.expand[0].groups == 1
            if block.proj is not None:
                assert block.proj[0].groups == 1


def test_width_two_projects_even_when_channels_match():
    block = create_model("2.0-SqNxt-23", 10, 227).stages[0][0]
    assert block.proj[0].in_channels == block.proj[0].out_channels == 64


def test_v5_transition_computes_relu_of_projection_plus_block():
    torch.manual_seed(0)
    block = SqueezeNextBlock(64, 32, stride=2, groups=1, sep_first="3x1", transition="v5").eval()
    x = torch.randn(1, 64, 16, 16)
    with torch.no_grad():
        p = block.proj(x)
        f = block.expand(block.sep2(block.sep1(block.reduce2(block.reduce1(p)))))
        assert torch.allclose(block(x), torch.relu(p + f))
    assert block.reduce1[0].in_channels == 32 and block.reduce1[0].stride == (1, 1)


def test_names_aliases_and_suggestions():
    assert resolve_name("1.0-sqnxt-23") == "1.0-SqNxt-23"
    # the re-implementation's own names are its own networks; spellings it never defined keep the paper's
    assert resolve_name("SqNxt_23_1x") == "seed-SqNxt-23-1x"
    assert resolve_name("SqNxt_23_2x_v5") == "seed-SqNxt-23-2x-v5"
    assert resolve_name("sqnxt_23_1.0x_v5") == "seed-SqNxt-23-1x-v5"
    assert resolve_name("sqnxt_44_1.5x") == "1.5-SqNxt-44"
    assert resolve_name("sqnxt_23_1.5x_v5") == "1.5-SqNxt-23v5"
    assert resolve_name("1.0-SqNxt-23v5") == "1.0-SqNxt-23v5"
    assert resolve_name("squeezenet_cifar") == "SqueezeNet-cifar"
    assert resolve_name("squeezenet1_0") == "SqueezeNet-1.0"
    assert resolve_name("SQUEEZENET1_1") == "SqueezeNet-1.1"
    assert resolve_name("1.0-g-sqnxt-23") == "1.0-G-SqNxt-23"
    with pytest.raises(UnknownModelError, match=r"closest: .*1\.0-SqNxt-23"):
        resolve_name("1.0-SqNxt-32")
    assert "unverified" in get_spec("1.0-SqNxt-34").description and not get_spec("1.0-SqNxt-34").verified


def test_zoo_lists_every_variant():
    expected = {
        f"{w}-SqNxt-{d}" for w in ("1.0", "1.5", "2.0") for d in ("23", "23v2", "23v3", "23v4", "23v5", "34", "44")
    }
    expected |= {"1.0-G-SqNxt-23", "SqueezeNet-1.0", "SqueezeNet-1.1", "SqueezeNet-cifar"}
    expected |= {f"seed-SqNxt-23-{w}x{v}" for w in ("1", "2") for v in ("", "-v5")}
    assert set(ALL) == expected


def test_cli_models_json(cli):
    result = cli("models", "--input-size", "227", "--num-classes", "1000", "--json")
    assert result.exit_code == 0
    rows = {r["name"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {n for n in ALL if supports(n, 227)} and "seed-SqNxt-23-1x" not in rows
    assert rows["1.0-SqNxt-23"]["params"] == 717_280
    assert rows["1.0-SqNxt-23"]["macs"] == pytest.approx(278.0e6, rel=0.01)
    assert rows["SqueezeNet-1.1"]["params"] == 1_235_496


def test_cli_models_layers_and_errors(cli):
    result = cli("models", "sqnxt_23_1x", "--input-size", "32", "--layers", "--json")
    data = json.loads(result.stdout)
    assert data["name"] == "seed-SqNxt-23-1x" and data["stem"] == "cifar"
    assert sum(layer["macs"] for layer in data["layers"]) == data["macs"]
    assert data["layers"][0]["output_shape"] == [1, 64, 32, 32]
    bad = cli("models", "SqNxt-99")
    assert bad.exit_code == 1
    assert "unknown model" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert "Traceback" not in bad.stderr


def test_version_and_help(cli):
    assert cli("--version").stdout.startswith("sqnxt-edge ")
    assert cli("models", "--help").exit_code == 0


def _readme_zoo() -> dict[str, list[str]]:
    """The README's zoo table: model -> [params @227, MMACs @227, params @32, MMACs @32, layout]."""
    from pathlib import Path

    text = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    start = text.index("| model | params @227, 1000 cls |")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0]] = cells[1:]
    return rows


README_ZOO = _readme_zoo()


def test_readme_zoo_lists_exactly_the_registry():
    assert list(README_ZOO) == ALL


@pytest.mark.parametrize("name", ALL)
def test_readme_figures_of_every_model(name):
    """What the README publishes per model is what the zoo builds: params and MMACs at 227 px / 1000 classes and at
    32 px / 10 classes ("-" only where the family cannot take that input), and the layout description."""
    from sqnxt_edge.errors import SqnxtError

    cells = README_ZOO[name]
    for (params, macs), (size, classes) in zip((cells[0:2], cells[2:4]), ((227, 1000), (32, 10))):
        try:
            model = create_model(name, classes, size)
        except SqnxtError:
            assert (params, macs) == ("-", "-"), f"{name} cannot take {size} px but the README gives figures"
            continue
        stats = model_stats(model, size)
        assert (params, macs) == (f"{stats.params:,}", f"{stats.macs / 1e6:.1f}"), (name, size)
    assert cells[4] == get_spec(name).description
