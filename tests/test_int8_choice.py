"""The int8 configuration is measured once per CPU model and runtime version, cached, and explained."""

import json

import pytest

from sqnxt_edge.quantize.choice import CANDIDATES, cache_path, choose_int8
from sqnxt_edge.quantize.config import default_int8_config
from sqnxt_edge.runner import cpu_info

PI4 = {"arch": "aarch64", "model": "Cortex-A72", "features": {"neon": True, "dotprod": False}, "int8_dot": False}


def _no_probe(folder):
    raise AssertionError("the probe ran although the choice was cached or not measurable here")


def test_default_candidates_are_portable_qdq():
    assert CANDIDATES and all(c.quant_format == "qdq" and c.per_channel for c in CANDIDATES)
    assert {c.activation_type for c in CANDIDATES} == {"uint8", "int8"}


@pytest.mark.slow
def test_measured_once_on_the_probe_then_cached(tmp_path):
    from sqnxt_edge.export.onnx_export import probe_onnx

    cache = tmp_path / "choice.json"
    first = choose_int8(probe=probe_onnx, cache=cache)
    assert first.source == "measured" and first.config in CANDIDATES
    assert set(first.speedups) == {c.label for c in CANDIDATES} and all(v > 0 for v in first.speedups.values())
    best = max(first.speedups, key=first.speedups.get)
    assert first.config.label == best and first.reason.startswith(best)
    stored = json.loads(cache.read_text())[first.key]
    assert stored["label"] == best and first.key.startswith(cpu_info()["arch"])
    again = choose_int8(probe=_no_probe, cache=cache)
    assert (again.source, again.config, again.speedups) == ("cache", first.config, first.speedups)


def test_a_board_cpu_gets_the_table_default_and_is_not_cached(tmp_path):
    cache = tmp_path / "choice.json"
    choice = choose_int8(cpu=PI4, probe=_no_probe, cache=cache)
    assert choice.source == "table" and choice.config == default_int8_config(PI4)
    assert "not measured here" in choice.reason and not cache.exists()


def test_stale_or_broken_cache_entries_are_ignored(tmp_path):
    cache = tmp_path / "choice.json"
    cache.write_text("{not json")
    assert choose_int8(cpu=PI4, probe=_no_probe, cache=cache).source == "table"
    here = choose_int8(cpu=PI4, cache=cache).key.replace(
        "aarch64|Cortex-A72", f"{cpu_info()['arch']}|{cpu_info()['model']}"
    )
    cache.write_text(json.dumps({here: {"label": "QOperator U8S8 per-channel"}}))  # no longer a candidate
    assert choose_int8(cache=cache).source == "table"  # no probe: not measured, and the stale label not used


def test_the_cache_follows_sqnxt_edge_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SQNXT_EDGE_CACHE", str(tmp_path))
    assert cache_path() == tmp_path / "int8-choice.json"
