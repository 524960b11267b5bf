"""Where the time goes and what a board you do not have would do: per-layer profiles measured by the runtime's own
profiler (`profile`), a per-layer cost model built from the graph (`estimate`, calibrated from profiles on the
board with `calibrate`), and choosing a variant for a latency budget (`select`).

Modules, one job each: `layers` (a model's layers, MACs and bytes, and node names -> layers), `probe` (the
profiler-floor probe and this machine's measured figures), `profile` (run + map + roll up), `costmodel` (the model
and its fit), `scaling` (thread speed-up per board), `interval` (the range every estimate carries), `estimate`
(hardware + calibration -> an estimate), `calibrate` (profiles on the device -> factors in the registry: end to
end over several models, per layer for one), `select`,
`report` (tables and plots).
"""

from .calibrate import CALIBRATION_MODELS, calibrate
from .costmodel import Factors, Hardware
from .estimate import Estimate, EstimateError, estimate, estimates_for, hardware_for
from .layers import Layer, LayerTable, artifact_layers, model_layers
from .profile import ProfileError, ProfileResult, profile
from .select import ACCURACY, Candidate, Selection, select

__all__ = [
    "profile",
    "ProfileResult",
    "ProfileError",
    "estimate",
    "calibrate",
    "CALIBRATION_MODELS",
    "estimates_for",
    "Estimate",
    "EstimateError",
    "hardware_for",
    "Hardware",
    "Factors",
    "select",
    "Selection",
    "Candidate",
    "ACCURACY",
    "Layer",
    "LayerTable",
    "model_layers",
    "artifact_layers",
]
