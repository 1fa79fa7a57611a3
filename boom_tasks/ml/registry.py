"""Load the configured models once per worker process and check them against their files.

Every check that can fail is done here, at load, so a wrong config entry stops a
worker at start-up with a message naming the model and input, instead of failing
(or, worse, silently mis-scoring) on the first batch: the file exists and loads,
every configured input exists in the graph with the shape the entry implies, no
graph input is left unfed, the output exists, and light-curve feature names are
known to the extractor.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from boom_tasks.ml.config import MLSettings, ModelInput, ModelSpec, band_value, resolve
from boom_tasks.ml.errors import ModelConfigError

log = logging.getLogger(__name__)

#: Threads per ONNX session. Workers scale by processes (``--processes``); letting
#: each session spawn one thread per core would oversubscribe the machine.
SESSION_THREADS = 1


@dataclass(frozen=True)
class BandInputs:
    """What one band's run of a model needs beyond the spec (light-curve names and means)."""

    feature_names: dict[str, list[str]] = field(default_factory=dict)
    feature_means: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class LoadedModel:
    """A model ready to run: its spec, one session per band, and per-band input data."""

    spec: ModelSpec
    sessions: dict[int | None, Any]
    band_inputs: dict[int | None, BandInputs]


def _session(path: Path, model: str) -> Any:
    import onnxruntime as ort  # heavy import, only in processes that run models

    if not path.is_file():
        raise ModelConfigError(f"model {model}: ONNX file not found: {path}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = SESSION_THREADS
    opts.inter_op_num_threads = SESSION_THREADS
    # Fink's forests declare output (N,) but return (N, 1): onnxruntime warns on every
    # run. predict.py reshapes, so only errors are worth logging.
    opts.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own untyped errors
        raise ModelConfigError(f"model {model}: cannot load {path}: {e}") from None


def expected_shape(inp: ModelInput, n_features: int | None = None) -> list[int]:
    """Return the shape one alert's value of ``inp`` has (without the batch axis)."""
    if inp.kind == "candidate":
        return [len(inp.fields)]
    if inp.kind == "cutouts":
        return [inp.size, inp.size, len(inp.cutouts)]
    return [int(n_features or 0)]


def _check_shape(model: str, inp: ModelInput, graph_shape: Sequence[Any], want: list[int]) -> None:
    # The batch axis is symbolic (None or a name); every other axis must be a number.
    got = list(graph_shape[1:])
    fixed = [d if isinstance(d, int) else None for d in got]
    mismatch = len(got) != len(want) or any(
        g is not None and g != w for g, w in zip(fixed, want, strict=False)
    )
    if mismatch:
        raise ModelConfigError(
            f"model {model}: input {inp.name!r} ({inp.kind}) would be (N, "
            f"{', '.join(map(str, want))}) but the ONNX graph expects {list(graph_shape)}"
        )


def _band_inputs(spec: ModelSpec, band: int | None, models_dir: Path) -> BandInputs:
    from boom_tasks.ml.lightcurve import check_feature_names, read_means

    out = BandInputs()
    for inp in spec.inputs:
        if inp.kind == "lightcurve" and inp.features is not None:
            names, means = read_means(resolve(models_dir, band_value(inp.features, band)))
            try:
                check_feature_names(names)
            except ModelConfigError as e:
                raise ModelConfigError(f"model {spec.name}: input {inp.name!r}: {e}") from None
            out.feature_names[inp.name] = names
            out.feature_means[inp.name] = means
    return out


def _check_graph(spec: ModelSpec, session: Any, inputs: BandInputs) -> None:
    graph = {i.name: i.shape for i in session.get_inputs()}
    configured = {i.name for i in spec.inputs}
    if missing := sorted(set(graph) - configured):
        raise ModelConfigError(f"model {spec.name}: ONNX inputs not configured: {missing}")
    for inp in spec.inputs:
        if inp.name not in graph:
            raise ModelConfigError(
                f"model {spec.name}: no ONNX input {inp.name!r}; the graph has {sorted(graph)}"
            )
        n = len(inputs.feature_names.get(inp.name, []))
        _check_shape(spec.name, inp, graph[inp.name], expected_shape(inp, n))
    outputs = [o.name for o in session.get_outputs()]
    if spec.output not in outputs:
        raise ModelConfigError(f"model {spec.name}: no output {spec.output!r}; has {outputs}")


def load_model(spec: ModelSpec, models_dir: Path) -> LoadedModel:
    """Load and check one model (every band).

    Raises
    ------
    ModelConfigError
        If a file is missing or unreadable, or the entry does not fit the graph.
    """
    sessions: dict[int | None, Any] = {}
    band_inputs: dict[int | None, BandInputs] = {}
    for band in spec.bands():
        session = _session(resolve(models_dir, band_value(spec.file, band)), spec.name)
        inputs = _band_inputs(spec, band, models_dir)
        _check_graph(spec, session, inputs)
        sessions[band], band_inputs[band] = session, inputs
    return LoadedModel(spec, sessions, band_inputs)


def load_models(ml: MLSettings, survey: str, models_dir: Path) -> list[LoadedModel]:
    """Load every model configured for ``survey`` (see :func:`load_model`)."""
    models = [load_model(spec, models_dir) for spec in ml.models.get(survey, [])]
    if models:
        log.info("%s models loaded: %s", survey, ", ".join(m.spec.name for m in models))
    return models
