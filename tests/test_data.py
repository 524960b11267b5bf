"""Datasets from files written in exactly their published formats, plus the broken and hostile cases."""

import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from sqnxt_edge.data import (
    DATASET_INFO,
    DATASETS,
    Augment,
    augment_batch,
    dataset_info,
    default_input_size,
    load_dataset,
    preprocess,
    resize_uint8,
)
from sqnxt_edge.data.base import to_channels
from sqnxt_edge.errors import DataError


# -- writers for the real formats ------------------------------------------------------------------------------------
def _cifar_rows(n, seed):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)


def _dump(path, obj):
    with open(path, "wb") as fh:
        pickle.dump(obj, fh, protocol=2)  # the official batches are protocol-2 pickles with bytes keys


def write_cifar10(root, per_batch=6):
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for i in range(1, 6):
        _dump(
            d / f"data_batch_{i}",
            {
                b"batch_label": f"training batch {i} of 5".encode(),
                b"data": _cifar_rows(per_batch, i),
                b"labels": [(i + j) % 10 for j in range(per_batch)],
                b"filenames": [f"img_{i}_{j}.png".encode() for j in range(per_batch)],
            },
        )
    _dump(
        d / "test_batch",
        {
            b"batch_label": b"testing batch 1 of 1",
            b"data": _cifar_rows(4, 99),
            b"labels": [3, 1, 4, 1],
            b"filenames": [b"t%d.png" % j for j in range(4)],
        },
    )
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    _dump(
        d / "batches.meta",
        {b"num_cases_per_batch": per_batch, b"label_names": [n.encode() for n in names], b"num_vis": 3072},
    )
    return d


def write_cifar100(root):
    d = root / "cifar-100-python"
    d.mkdir(parents=True)
    _dump(
        d / "train",
        {
            b"filenames": [b"a", b"b", b"c"],
            b"batch_label": b"training batch 1 of 1",
            b"fine_labels": [0, 99, 42],
            b"coarse_labels": [0, 19, 5],
            b"data": _cifar_rows(3, 1),
        },
    )
    _dump(
        d / "test",
        {
            b"filenames": [b"d", b"e"],
            b"batch_label": b"testing batch 1 of 1",
            b"fine_labels": [7, 8],
            b"coarse_labels": [1, 2],
            b"data": _cifar_rows(2, 2),
        },
    )
    _dump(
        d / "meta",
        {
            b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
            b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)],
        },
    )
    return d


COLORS = [(220, 30, 30), (30, 220, 30), (30, 30, 220)]


def _save(path, color, size=(64, 64)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)


def write_tiny_imagenet(root, per_class=3, val_per_class=2):
    d = root / "tiny-imagenet-200"
    wnids = ["n01443537", "n01629819", "n01641577"]
    (d).mkdir(parents=True)
    (d / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (d / "words.txt").write_text(
        "n00001740\tentity\n" + "n01443537\tgoldfish, Carassius auratus\n"
        "n01629819\tEuropean fire salamander, Salamandra salamandra\n"
        "n01641577\tbullfrog, Rana catesbeiana\n"
    )
    lines = []
    for c, wnid in enumerate(wnids):
        for j in range(per_class):
            _save(d / "train" / wnid / "images" / f"{wnid}_{j}.JPEG", COLORS[c])
        (d / "train" / wnid / f"{wnid}_boxes.txt").write_text("")
        for j in range(val_per_class):
            name = f"val_{c * val_per_class + j}.JPEG"
            _save(d / "val" / "images" / name, COLORS[c])
            lines.append(f"{name}\t{wnid}\t0\t0\t63\t63")
    (d / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    return d


# -- registry --------------------------------------------------------------------------------------------------------
def test_registry_lists_every_dataset_with_its_input_size():
    assert set(DATASETS) == {"digits", "cifar10", "cifar100", "tiny-imagenet", "folder"}
    assert DATASETS["digits"] == default_input_size("digits") == 32
    assert default_input_size("tiny-imagenet") == 64 and default_input_size("no-such") == 224
    assert dataset_info("CIFAR-10").name == "cifar10"
    assert DATASET_INFO["digits"].augment.flip is False  # a mirrored digit is another symbol
    assert DATASET_INFO["cifar10"].augment == Augment(pad=4, flip=True)


@pytest.mark.parametrize("name, split", [("imagenet-21k", "train"), ("digits", "holdout")])
def test_unknown_dataset_or_split_is_one_line(name, split):
    with pytest.raises(DataError) as exc:
        load_dataset(name, split)
    assert "\n" not in str(exc.value)


# -- digits ----------------------------------------------------------------------------------------------------------
def test_digits_fixed_split_and_existing_api():
    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert len(train) + len(test) == 1797 and len(test) == 360
    assert train.images.shape[1:] == (8, 8, 3) and train.classes == [str(i) for i in range(10)]
    again = load_dataset("digits", "test")
    assert np.array_equal(test.images, again.images) and np.array_equal(test.labels, again.labels)
    x = preprocess(test.images[:4], 32, test.mean, test.std)
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    assert resize_uint8(test.images[:2], 32).shape == (2, 32, 32, 3)
    assert load_dataset("digits", "val").labels.tolist() == test.labels.tolist()


# -- CIFAR -----------------------------------------------------------------------------------------------------------
def test_cifar10_reads_the_official_batches(tmp_path):
    d = write_cifar10(tmp_path)
    train = load_dataset("cifar10", "train", tmp_path)
    test = load_dataset("cifar10", "test", tmp_path)
    assert train.images.shape == (30, 32, 32, 3) and len(test) == 4
    assert test.labels.tolist() == [3, 1, 4, 1] and test.classes[3] == "cat"
    assert train.mean == (0.4914, 0.4822, 0.4465) and train.std == (0.2023, 0.1994, 0.2010)
    # rows are 1024 red, 1024 green, 1024 blue values, each plane row-major
    row = pickle.loads((d / "test_batch").read_bytes(), encoding="bytes")[b"data"][2]
    assert test.images[2, 0, 0].tolist() == [row[0], row[1024], row[2048]]
    assert test.images[2, 1, 5, 2] == row[2048 + 32 + 5]
    # --data-dir may also be the batch folder itself
    assert np.array_equal(load_dataset("cifar10", "test", d).images, test.images)


def test_cifar100_uses_fine_labels(tmp_path):
    write_cifar100(tmp_path)
    train = load_dataset("cifar100", "train", tmp_path)
    assert train.labels.tolist() == [0, 99, 42] and len(train.classes) == 100 and train.classes[42] == "fine42"
    assert load_dataset("cifar100", "test", tmp_path).labels.tolist() == [7, 8]


@pytest.mark.parametrize(
    "name, folder",
    [("cifar10", "cifar-10-batches-py"), ("cifar100", "cifar-100-python"), ("tiny-imagenet", "tiny-imagenet-200")],
)
def test_missing_data_says_what_to_download_and_where(tmp_path, name, folder):
    with pytest.raises(DataError) as exc:
        load_dataset(name, "train", tmp_path)
    msg = str(exc.value)
    assert "\n" not in msg and folder in msg and str(tmp_path) in msg and "http" in msg


class _Boom:
    def __reduce__(self):
        return (os.system, ("touch pwned",))


def test_hostile_cifar_pickle_is_refused_without_running_it(tmp_path, monkeypatch):
    d = write_cifar10(tmp_path)
    monkeypatch.chdir(tmp_path)
    _dump(d / "test_batch", {b"data": _Boom(), b"labels": [1]})
    with pytest.raises(DataError, match="refused"):
        load_dataset("cifar10", "test", tmp_path)
    assert not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "wrong-shape", "label-count", "not-a-dict"])
def test_corrupt_cifar_batches_are_one_line_errors(tmp_path, damage):
    d = write_cifar10(tmp_path)
    target = d / "test_batch"
    good = target.read_bytes()
    if damage == "truncated":
        target.write_bytes(good[: len(good) // 2])
    elif damage == "empty":
        target.write_bytes(b"")
    elif damage == "garbage":
        target.write_bytes(os.urandom(512))
    elif damage == "wrong-shape":
        _dump(target, {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    elif damage == "label-count":
        _dump(target, {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]})
    else:
        _dump(target, [1, 2, 3])
    with pytest.raises(DataError) as exc:
        load_dataset("cifar10", "test", tmp_path)
    assert "\n" not in str(exc.value) and "test_batch" in str(exc.value)


def test_cifar_missing_one_batch_is_named(tmp_path):
    d = write_cifar10(tmp_path)
    (d / "data_batch_3").unlink()
    with pytest.raises(DataError, match="data_batch_3"):
        load_dataset("cifar10", "train", tmp_path)


# -- Tiny ImageNet ---------------------------------------------------------------------------------------------------
def test_tiny_imagenet_reads_the_published_layout(tmp_path):
    write_tiny_imagenet(tmp_path)
    train = load_dataset("tiny-imagenet", "train", tmp_path)
    val = load_dataset("tiny-imagenet", "test", tmp_path)
    assert train.classes == ["goldfish", "European fire salamander", "bullfrog"]
    assert train.images.shape == (9, 64, 64, 3) and len(val) == 6
    assert train.mean == (0.485, 0.456, 0.406)
    for images in (train, val):  # every image carries its class's colour (JPEG is lossy: a tolerance)
        for img, label in zip(images.images, images.labels):
            assert np.abs(img.reshape(-1, 3).mean(0) - COLORS[label]).max() < 8


def test_tiny_imagenet_bad_annotation_is_located(tmp_path):
    d = write_tiny_imagenet(tmp_path)
    (d / "val" / "val_annotations.txt").write_text("val_0.JPEG\tn99999999\t0\t0\t1\t1\n")
    with pytest.raises(DataError, match=r"val_annotations.txt:1"):
        load_dataset("tiny-imagenet", "test", tmp_path)


# -- folder ----------------------------------------------------------------------------------------------------------
def test_folder_with_train_and_test_subfolders(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        for c, name in enumerate(["zebra", "apple", "mango"]):
            for j in range(n):
                suffix = [".png", ".jpg", ".bmp"][j % 3]
                _save(tmp_path / split / name / f"{j}{suffix}", COLORS[c], size=(40 + 10 * j, 30))
    train = load_dataset("folder", "train", tmp_path, image_size=24)
    test = load_dataset("folder", "val", tmp_path, image_size=24)
    assert train.classes == ["apple", "mango", "zebra"]  # sorted folder names
    assert train.images.shape == (9, 24, 24, 3) and len(test) == 6
    assert test.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert np.abs(test.images[0].reshape(-1, 3).mean(0) - COLORS[1]).max() < 8  # "apple" was written in COLORS[1]


def test_folder_without_splits_gets_a_seeded_stratified_split(tmp_path):
    for c, name in enumerate(["a", "b"]):
        for j in range(10):
            _save(tmp_path / name / f"{j}.png", COLORS[c], size=(16, 16))
    (tmp_path / "a" / "notes.txt").write_text("not an image")
    train = load_dataset("folder", "train", tmp_path, image_size=16)
    test = load_dataset("folder", "test", tmp_path, image_size=16)
    assert len(train) == 16 and len(test) == 4 and sorted(test.labels.tolist()) == [0, 0, 1, 1]
    assert np.array_equal(load_dataset("folder", "test", tmp_path, image_size=16).images, test.images)


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="--data-dir"):
        load_dataset("folder", "train")
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(DataError, match="no images"):
        load_dataset("folder", "train", tmp_path / "empty")
    _save(tmp_path / "bad" / "cls" / "ok.png", COLORS[0])
    (tmp_path / "bad" / "cls" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(DataError, match=r"broken\.jpg") as exc:
        load_dataset("folder", "train", tmp_path / "bad")
    assert "\n" not in str(exc.value)


# -- augmentation and channels ---------------------------------------------------------------------------------------
def test_augment_flip_only_mirrors_and_is_reproducible():
    n = 64  # every image differs from its mirror: each output says whether it was flipped
    x = (
        torch.arange(4 * 4 * 3, dtype=torch.uint8).reshape(1, 4, 4, 3)
        + torch.arange(n, dtype=torch.uint8)[:, None, None, None]
    )
    aug = Augment(pad=0, flip=True)
    a = augment_batch(x, aug, torch.Generator().manual_seed(1))
    assert torch.equal(a, augment_batch(x, aug, torch.Generator().manual_seed(1)))

    def flipped(out: torch.Tensor) -> list[bool]:
        seen = []
        for orig, img in zip(x, out):
            assert torch.equal(img, orig) or torch.equal(img, orig.flip(1))  # left-right only, nothing else
            seen.append(torch.equal(img, orig.flip(1)))
        return seen

    once = flipped(a)
    assert 16 <= sum(once) <= 48  # about half (binomial 64, 1/2: outside this range once in ~10^4 seeds)
    assert flipped(augment_batch(x, aug, torch.Generator().manual_seed(2))) != once  # the generator decides
    assert not any(flipped(augment_batch(x, Augment(pad=0, flip=False), torch.Generator().manual_seed(1))))
    assert torch.equal(augment_batch(x, None, torch.Generator()), x)


def test_augment_pad_crop_shifts_within_the_pad():
    x = torch.zeros(64, 32, 32, 1, dtype=torch.uint8)
    x[:, 16, 16] = 255
    out = augment_batch(x, Augment(pad=4, flip=False), torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    ys, xs = [], []
    for img in out[..., 0]:
        (y,), (xx,) = torch.nonzero(img == 255, as_tuple=True)
        ys.append(int(y)), xs.append(int(xx))
    assert min(ys) >= 12 and max(ys) <= 20 and min(xs) >= 12 and max(xs) <= 20
    assert len(set(zip(ys, xs))) > 10  # really random


def test_to_channels():
    rgb = np.full((1, 2, 2, 3), (255, 0, 0), np.uint8)
    assert to_channels(rgb, 1).shape == (1, 2, 2, 1) and to_channels(rgb, 1)[0, 0, 0, 0] == 76
    assert to_channels(to_channels(rgb, 1), 3).shape == (1, 2, 2, 3)
    grey = load_dataset("digits", "test", channels=1)
    assert grey.images.shape[-1] == 1 and grey.mean == (0.5,)
