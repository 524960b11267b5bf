"""int8 on every CPU class: the candidates are the configurations numerically safe on every class a target covers,
ordered by speed measured once per CPU class (ISA features, not the model string) and cached, and explained."""

import json

import pytest

from sqnxt_edge.errors import ExportError
from sqnxt_edge.quantize import Int8Config, default_candidates
from sqnxt_edge.quantize.choice import CANDIDATES, cache_path, candidates_for, choose_int8, default_int8_config
from sqnxt_edge.quantize.targets import (
    CPU_CLASSES,
    PORTABLE,
    TARGETS,
    check_target,
    class_of,
    covers,
    is_safe,
    isa_key,
    safe_on,
    target_suffix,
)
from sqnxt_edge.runner import cpu_info

FULL_U8S8 = Int8Config("uint8", "int8", "qdq", per_channel=True)
SEVEN_BIT = FULL_U8S8.with_(reduce_range=True)
ZEN3 = {"arch": "x86_64", "model": "AMD EPYC", "features": {"avx2": True, "avx512": False, "vnni": False}}
ZEN4 = {"arch": "x86_64", "model": "AMD EPYC", "features": {"avx2": True, "avx512": True, "vnni": True}}
SKYLAKE_X = {"arch": "x86_64", "model": "Xeon Gold 6130", "features": {"avx2": True, "avx512": True, "vnni": False}}
PI4 = {"arch": "aarch64", "model": "Cortex-A72", "features": {"neon": True, "dotprod": False}}
PI5 = {"arch": "aarch64", "model": "Cortex-A76", "features": {"neon": True, "dotprod": True}}


def _no_probe(folder):
    raise AssertionError("the probe ran although the choice was cached or not measurable here")


@pytest.mark.parametrize(
    "cpu,name",
    [(ZEN3, "x86-avx2"), (ZEN4, "x86-vnni"), (SKYLAKE_X, "x86-avx2"), (PI4, "arm-neon"), (PI5, "arm-dotprod")],
)
def test_cpu_classes_follow_the_isa_features(cpu, name):
    assert class_of(cpu).name == name


def test_the_cache_key_is_isa_features_not_the_model_string():
    """A VM calls Zen 3 and Zen 4 both "AMD EPYC": keyed on the model string, one's measured choice was the other's."""
    assert isa_key(ZEN3, "onnxruntime 1.32.0") != isa_key(ZEN4, "onnxruntime 1.32.0")
    assert "vnni" in isa_key(ZEN4, "onnxruntime 1.32.0") and "vnni" not in isa_key(ZEN3, "onnxruntime 1.32.0")
    assert isa_key(ZEN4, "onnxruntime 1.32.0") != isa_key(ZEN4, "onnxruntime 1.31.1")


def test_full_range_u8s8_is_unsafe_only_where_vpmaddubsw_saturates():
    assert set(safe_on(FULL_U8S8)) == set(CPU_CLASSES) - {"x86-avx2"}
    assert set(safe_on(SEVEN_BIT)) == set(safe_on(FULL_U8S8.with_(activation_type="int8"))) == set(CPU_CLASSES)
    assert not is_safe(FULL_U8S8, PORTABLE) and is_safe(FULL_U8S8, "x86-vnni") and is_safe(SEVEN_BIT, PORTABLE)
    assert covers(PORTABLE) == tuple(CPU_CLASSES) and covers("arm-neon") == ("arm-neon",)


@pytest.mark.parametrize("target", TARGETS)
def test_every_target_gets_only_safe_qdq_candidates(target):
    found = candidates_for(target)
    assert found and all(is_safe(c, target) and c.quant_format == "qdq" and c.per_channel for c in found)
    assert all(is_safe(c, target) for c in default_candidates(target=target))  # --int8-tune too
    assert default_int8_config(target) == found[0]


def test_portable_default_is_seven_bit_u8s8_and_vnni_may_use_full_range():
    assert default_int8_config() == SEVEN_BIT and FULL_U8S8 not in candidates_for(PORTABLE)
    assert default_int8_config("x86-vnni") == FULL_U8S8
    assert default_int8_config("arm-neon").activation_type == "int8"  # S8S8 first on ARM (MLAS's native kernels)


def test_targets_are_checked_and_here_is_this_machines_class():
    assert check_target("here") == class_of(cpu_info()).name
    assert check_target("X86-VNNI") == "x86-vnni"
    with pytest.raises(ExportError, match="unknown --int8-target 'sparc'"):
        check_target("sparc")
    assert target_suffix(PORTABLE) == "int8" and target_suffix("x86-vnni") == "int8-x86-vnni"


@pytest.mark.slow
def test_measured_once_on_the_probe_then_cached(tmp_path):
    from sqnxt_edge.export.onnx_export import probe_onnx

    cache = tmp_path / "choice.json"
    first = choose_int8(PORTABLE, probe=probe_onnx, cache=cache)
    assert first.source == "measured" and set(first.speedups) == {c.label for c in candidates_for(PORTABLE)}
    assert all(v > 0 for v in first.speedups.values())
    assert [c.label for c in first.candidates] == sorted(first.speedups, key=lambda k: -first.speedups[k])
    assert class_of(cpu_info()).name in first.reason and "safe on" in first.reason
    stored = json.loads(cache.read_text())[first.key]
    assert stored["order"] == [c.label for c in first.candidates] and first.key.endswith("|portable")
    again = choose_int8(PORTABLE, probe=_no_probe, cache=cache)
    assert (again.source, again.candidates, again.speedups) == ("cache", first.candidates, first.speedups)


def test_a_class_this_machine_is_not_gets_the_table_order_and_is_not_cached(tmp_path):
    cache = tmp_path / "choice.json"
    other = "arm-neon" if class_of(cpu_info()).arch == "x86" else "x86-avx2"
    choice = choose_int8(other, probe=_no_probe, cache=cache)
    assert choice.source == "table" and choice.candidates == candidates_for(other)
    assert "not measured here" in choice.reason and not cache.exists()


def test_stale_or_broken_cache_entries_are_ignored(tmp_path):
    cache = tmp_path / "choice.json"
    cache.write_text("{not json")
    assert choose_int8(PORTABLE, cache=cache).source == "table"  # no probe: not measured
    key = choose_int8(PORTABLE, cache=cache).key
    cache.write_text(json.dumps({key: {"speedups": {"QDQ U8S8 per-channel": 2.0}}}))  # not this target's candidates
    choice = choose_int8(PORTABLE, cache=cache)
    assert choice.source == "table" and FULL_U8S8 not in choice.candidates


def test_the_cache_follows_sqnxt_edge_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SQNXT_EDGE_CACHE", str(tmp_path))
    assert cache_path() == tmp_path / "int8-choice.json"


def test_candidates_are_unique_qdq_configs():
    assert len({c.label for c in CANDIDATES}) == len(CANDIDATES)
