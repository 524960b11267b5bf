"""Training, resuming, checkpoints and evaluation, on real (if small) data."""

import json
import math

import pytest
import torch

from sqnxt_edge.checkpoint import load_checkpoint
from sqnxt_edge.errors import SqnxtError
from sqnxt_edge.training import RECIPES, EvalResult, TrainConfig, evaluate, get_recipe, resolve_config, train
from sqnxt_edge.training.recipes import lr_factor

from builders import write_color_folder


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    """A 3-class ImageFolder tree (train/ and test/) of noisy coloured squares: learnable in seconds."""
    return write_color_folder(tmp_path_factory.mktemp("tiny-folder"), {"train": 12, "test": 4}, noise=30)


def _cfg(root, out, **kw):
    base = dict(
        model="1.0-SqNxt-23",
        data="folder",
        data_dir=root,
        input_size=16,
        epochs=3,
        batch_size=8,
        recipe="seed-cifar",
        lr=0.05,
        out=out,
        seed=0,
        threads=1,
    )  # one summation order for every run
    base.update(kw)
    return TrainConfig(**base)


def _stable(history):
    return [{k: v for k, v in r.items() if k not in ("seconds", "images_per_s")} for r in history]


# -- recipes ---------------------------------------------------------------------------------------------------------
def test_recipes_match_the_spec():
    seed, paper = get_recipe("seed-cifar"), get_recipe("paper-imagenet")
    assert (seed.lr, seed.batch_size, seed.epochs, seed.weight_decay, seed.momentum) == (0.1, 128, 200, 5e-4, 0.9)
    assert seed.milestones == (60, 120, 160) and seed.gamma == 0.2
    assert (paper.lr, paper.base_batch, paper.epochs, paper.weight_decay, paper.power) == (0.4, 1024, 120, 1e-4, 2.0)
    assert set(RECIPES) >= {"seed-cifar", "paper-imagenet", "digits-fast"}
    with pytest.raises(SqnxtError, match="unknown recipe"):
        get_recipe("sgdr")


def test_step_schedule_drops_by_gamma_at_milestones():
    r = get_recipe("seed-cifar")
    f = [lr_factor(r, e * 10, 10, 200, 128) for e in (0, 59, 60, 119, 120, 160, 199)]
    assert f == pytest.approx([1, 1, 0.2, 0.2, 0.04, 0.008, 0.008])


def test_paper_recipe_warms_up_linearly_then_decays_poly2():
    r = get_recipe("paper-imagenet")
    steps = 1251  # ImageNet at batch 1024
    assert lr_factor(r, 0, steps, 120, 1024) == pytest.approx(0.25)  # from 0.1 to 0.4
    assert lr_factor(r, 390, steps, 120, 1024) == pytest.approx(0.625)
    assert lr_factor(r, 780, steps, 120, 1024) == pytest.approx(1.0)
    total = steps * 120
    mid = 780 + (total - 780) // 2
    assert lr_factor(r, mid, steps, 120, 1024) == pytest.approx(0.25, abs=1e-3)
    assert lr_factor(r, total, steps, 120, 1024) == pytest.approx(0.0)


def test_flags_override_and_lr_scales_with_batch():
    cfg, recipe = resolve_config(
        TrainConfig(model="SqNxt_23_1x", data="cifar10", recipe="paper-imagenet", batch_size=256)
    )
    assert cfg.model == "seed-SqNxt-23-1x" and cfg.input_size == 32 and cfg.stem == "cifar"
    assert recipe.lr == pytest.approx(0.1) and recipe.warmup_start_lr == pytest.approx(0.025)
    assert recipe.warmup_iters == 780 * 4  # the same number of warm-up images
    cfg, recipe = resolve_config(TrainConfig(data="cifar10", epochs=20, lr=0.05, weight_decay=1e-4))
    assert recipe.name == "seed-cifar" and recipe.milestones == (6, 12, 16) and recipe.lr == 0.05
    assert recipe.weight_decay == 1e-4 and cfg.recipe == "seed-cifar"
    with pytest.raises(SqnxtError):
        resolve_config(TrainConfig(model="ResNet-50"))
    with pytest.raises(SqnxtError):
        resolve_config(TrainConfig(data="mnist"))


# -- the shared digits checkpoint ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_digits_checkpoint_is_complete_and_evaluates_to_its_recorded_accuracy(digits_checkpoint):
    raw = torch.load(digits_checkpoint, map_location="cpu", weights_only=True)  # plain containers only
    assert "optimizer" not in raw
    ckpt = load_checkpoint(digits_checkpoint)
    assert ckpt.model_name == "1.0-SqNxt-23" and ckpt.input_size == 32 and ckpt.stem == "cifar"
    assert ckpt.classes == [str(i) for i in range(10)] and ckpt.dataset == "digits"
    assert ckpt.mean == (0.5, 0.5, 0.5) and ckpt.config["train"]["seed"] == 0
    result = evaluate(digits_checkpoint)  # dataset taken from the checkpoint
    assert isinstance(result, EvalResult) and result.n == 360 and result.dataset == "digits"
    assert result.top1 == pytest.approx(ckpt.metrics["test_top1"])
    assert result.top1 >= 90.0 and result.top5 >= result.top1
    run = digits_checkpoint.parent
    lines = (run / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == ckpt.config["train"]["epochs"]
    assert set(json.loads(lines[0])) >= {"epoch", "loss", "train_top1", "test_top1", "lr", "images_per_s", "seconds"}
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- train, resume, eval on a small folder dataset -------------------------------------------------------------------
def test_train_writes_the_run_folder(tiny_folder, tmp_path):
    result = train(_cfg(tiny_folder, tmp_path / "run"), progress=False)
    files = {p.name for p in result.out_dir.iterdir()}
    assert {"best.pt", "last.pt", "metrics.jsonl", "curves.png", "config.json"} <= files
    assert not any(name.endswith(".tmp") for name in files)
    assert len(result.history) == 3 and result.best_top1 == max(r["test_top1"] for r in result.history)
    last = load_checkpoint(result.last_path)
    assert {"optimizer", "scheduler", "rng", "history"} <= set(last.extra) and last.epoch == 3
    assert last.classes == ["blue", "green", "red"] and last.data_dir == str(tiny_folder)
    config = json.loads((result.out_dir / "config.json").read_text())
    assert config["recipe"]["lr"] == 0.05 and config["train"]["batch_size"] == 8
    assert evaluate(result.best_path, "folder", data_dir=tiny_folder).top1 == pytest.approx(result.best_top1)
    with pytest.raises(SqnxtError, match="already holds a run"):
        train(_cfg(tiny_folder, tmp_path / "run"), progress=False)


@pytest.mark.parametrize("model, size", [("1.0-SqNxt-23", 16), ("SqueezeNet-1.1", 32)])  # SqueezeNet: dropout too
def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(tiny_folder, tmp_path, model, size):
    full = train(_cfg(tiny_folder, tmp_path / "full", model=model, input_size=size), progress=False)

    def stop_after_two(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(
            _cfg(tiny_folder, tmp_path / "cut", model=model, input_size=size), progress=False, on_epoch=stop_after_two
        )
    assert load_checkpoint(tmp_path / "cut" / "last.pt").epoch == 2
    resumed = train(TrainConfig(out=tmp_path / "cut", resume=True), progress=False)
    assert _stable(resumed.history) == _stable(full.history)
    a, b = load_checkpoint(full.last_path), load_checkpoint(resumed.last_path)
    assert a.state_dict.keys() == b.state_dict.keys()
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert len((tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()) == 3


def test_resume_errors(tmp_path):
    with pytest.raises(SqnxtError, match="--out"):
        train(TrainConfig(resume=True), progress=False)
    with pytest.raises(SqnxtError, match="nothing to resume"):
        train(TrainConfig(resume=True, out=tmp_path), progress=False)


def test_bare_state_dict_evaluates_with_model_named(tiny_folder, tmp_path):
    result = train(_cfg(tiny_folder, tmp_path / "run", epochs=1), progress=False)
    ckpt = load_checkpoint(result.best_path)
    bare = tmp_path / "bare.pt"
    torch.save(ckpt.state_dict, bare)
    with pytest.raises(SqnxtError, match="--model"):
        evaluate(bare, "folder", data_dir=tiny_folder)
    got = evaluate(bare, "folder", data_dir=tiny_folder, model="1.0-SqNxt-23", input_size=16)
    assert got.top1 == pytest.approx(result.best_top1) and got.n == 12


# -- the CLI ---------------------------------------------------------------------------------------------------------
def test_cli_train_then_eval_json(cli, tiny_folder, tmp_path):
    out = tmp_path / "cli-run"
    res = cli(
        "train",
        "--model",
        "1.0-SqNxt-23",
        "--data",
        "folder",
        "--data-dir",
        tiny_folder,
        "--input-size",
        16,
        "--epochs",
        2,
        "--batch-size",
        8,
        "--lr",
        0.05,
        "--recipe",
        "seed-cifar",
        "--out",
        out,
        "--json",
    )
    assert res.exit_code == 0, res.stderr
    trained = json.loads(res.stdout)
    assert trained["epochs"] == 2 and trained["best_path"] == str(out / "best.pt")
    res = cli("eval", out / "best.pt", "--data", "folder", "--data-dir", tiny_folder, "--json")
    assert res.exit_code == 0, res.stderr
    got = json.loads(res.stdout)
    assert got["n"] == 12 and got["top1"] == pytest.approx(trained["best_top1"]) and got["top5"] == 100.0
    res = cli("train", "--out", out, "--resume", "--epochs", 3, "--json")  # run one epoch longer
    assert res.exit_code == 0, res.stderr
    assert json.loads(res.stdout)["epochs"] == 3


@pytest.mark.parametrize(
    "args, needle",
    [
        (["train", "--data", "imagenet-21k"], "unknown dataset"),
        (["train", "--model", "SqNxt-99", "--data", "digits"], "unknown model"),
        (["train", "--data", "cifar10", "--data-dir", "{tmp}"], "cifar-10-batches-py"),
        (["eval", "{tmp}/corrupt.pt", "--data", "digits"], "corrupt"),
        (["eval", "{tmp}/missing.pt", "--data", "digits"], "not found"),
        (["eval", "{tmp}/model.xyz", "--data", "digits"], "cannot evaluate"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_1(cli, tmp_path, args, needle):
    (tmp_path / "corrupt.pt").write_bytes(b"PK\x03\x04 this is no zip")
    (tmp_path / "model.xyz").write_bytes(b"x")
    res = cli(*[a.replace("{tmp}", str(tmp_path)) for a in args])
    assert res.exit_code == 1
    assert needle in res.stderr and len(res.stderr.strip().splitlines()) == 1 and res.stdout == ""


@pytest.mark.slow
def test_eval_runs_an_onnx_export_through_the_runner(tiny_folder, tmp_path):
    result = train(_cfg(tiny_folder, tmp_path / "run", epochs=1), progress=False)
    ckpt = load_checkpoint(result.best_path)
    model = ckpt.build_model()
    onnx_path = tmp_path / "m.onnx"
    torch.onnx.export(
        model,
        torch.zeros(1, 3, 16, 16),
        onnx_path,
        dynamo=False,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
    )
    meta = {
        "model_name": ckpt.model_name,
        "classes": ckpt.classes,
        "mean": list(ckpt.mean),
        "std": list(ckpt.std),
        "input_size": 16,
        "in_channels": 3,
        "layout": "NCHW",
        "precision": "fp32",
        "dataset": "folder",
    }
    (tmp_path / "m.onnx.meta.json").write_text(json.dumps(meta))
    got = evaluate(onnx_path, data_dir=tiny_folder)
    assert got.kind == "onnx" and got.runtime.startswith("onnxruntime") and got.n == 12
    assert got.top1 == pytest.approx(result.best_top1)
    assert math.isclose(got.top5, 100.0)


def test_training_threads_follow_the_load_and_stay_with_the_run(tiny_folder, tmp_path, monkeypatch):
    import subprocess
    import sys

    from sqnxt_edge.runner import default_threads
    from sqnxt_edge.training.threads import others_busy, training_threads

    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert training_threads(3) == (3, "--threads")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert training_threads() == (1, "OMP_NUM_THREADS")
    monkeypatch.delenv("OMP_NUM_THREADS")
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = others_busy(0.5)
        threads, why = training_threads()
    finally:
        spinner.kill()
        spinner.wait()
    assert busy is not None and busy >= 0.5, busy  # one process spinning is about one CPU's worth
    assert threads <= max(1, default_threads() - 1) and "busy with other processes" in why
    run = train(_cfg(tiny_folder, tmp_path / "run", epochs=1, threads=None), progress=False)
    saved = json.loads((tmp_path / "run" / "config.json").read_text())["train"]["threads"]
    assert saved == run.config["train"]["threads"] >= 1
    again = train(TrainConfig(out=tmp_path / "run", resume=True, epochs=2), progress=False)
    assert again.config["train"]["threads"] == saved  # a resume sums in the run's own order
