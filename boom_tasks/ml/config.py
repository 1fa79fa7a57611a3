"""The model registry: each model is a config entry plus an ONNX file, no code.

An entry names the model (the field it writes, ``classifications.<name>``), its
ONNX file (or one file per band, whose scores are then combined), the output to
read, and how to build each ONNX input from an alert:

``candidate``
    candidate fields in the given order, as float32 (N, len(fields));
``cutouts``
    cutout images (gunzipped FITS), NaN set to 0, normalised, padded to
    ``size``, stacked on the last axis: float32 (N, size, size, len(cutouts));
``lightcurve``
    light-curve features of the object's detections in the model's band, computed
    with the ``light-curve`` package; ``features`` is a CSV of feature names (in
    input order) and the means that fill features that cannot be computed.

Paths are relative to ``models_dir``. Input shapes are checked against the ONNX
file when a worker loads the models, so a wrong entry fails at start-up.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from boom_tasks.config_base import Section

#: A path, or one path per band (ZTF fid: 1 = g, 2 = r, 3 = i).
PerBand = str | dict[int, str]


class ModelInput(Section):
    """How one ONNX input of a model is built from an alert."""

    #: Input name in the ONNX graph.
    name: str
    kind: Literal["candidate", "cutouts", "lightcurve"]
    #: ``candidate``: candidate fields, in input order.
    fields: list[str] = []
    #: ``cutouts``: cutout names, stacked on the last axis in this order.
    cutouts: list[str] = []
    #: ``cutouts``: side of the square image the model takes (smaller stamps are padded).
    size: int = Field(63, ge=1)
    #: ``cutouts``: "l2" divides each stamp by its L2 norm (computed in float64).
    normalise: Literal["l2", "none"] = "l2"
    #: ``lightcurve``: CSV of feature names and means (one per band with per-band files).
    features: PerBand | None = None
    #: ``lightcurve``: use only the points of the last ``window_days`` before the alert
    #: (the history a packet carries, which is what such a model was trained on).
    window_days: float | None = Field(None, gt=0)

    @model_validator(mode="after")
    def _complete(self) -> ModelInput:
        needed = {"candidate": "fields", "cutouts": "cutouts", "lightcurve": "features"}[self.kind]
        if not getattr(self, needed):
            raise ValueError(f"a {self.kind} input needs {needed}")
        return self


class ModelSpec(Section):
    """One model of a survey, written under ``classifications.<name>``."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    #: ONNX file, or one file per band (fid) whose scores are combined.
    file: PerBand
    inputs: list[ModelInput] = Field(min_length=1)
    #: Output to read; its first column is the score.
    output: str = "score"
    #: How per-band scores become one score.
    combine: Literal["min", "max", "mean"] = "mean"
    #: Score written when a band has no light curve, or no feature of any band could be
    #: computed (Fink writes 0.0); None skips the alert instead. Either way the reason
    #: is recorded under ``classifications_skipped.<name>``.
    absent_score: float | None = None

    @model_validator(mode="after")
    def _bands_agree(self) -> ModelSpec:
        for inp in self.inputs:
            per_band = isinstance(inp.features, dict)
            if per_band and not isinstance(self.file, dict):
                raise ValueError(f"input {inp.name}: per-band features need per-band files")
            if per_band and set(inp.features) != set(self.file):  # type: ignore[arg-type]
                raise ValueError(f"input {inp.name}: feature bands differ from file bands")
        return self

    def bands(self) -> list[int | None]:
        """Return the bands run separately (``[None]`` for a single file)."""
        if isinstance(self.file, dict):
            return [*sorted(self.file)]
        return [None]

    def needs_cutouts(self) -> bool:
        """Return True if an input reads cutouts (the stage then fetches them)."""
        return any(i.kind == "cutouts" for i in self.inputs)


def band_value(value: PerBand, band: int | None) -> str:
    """Return the path for ``band`` of a per-band mapping (or the single path)."""
    return value if isinstance(value, str) else value[band]  # type: ignore[index]


def resolve(models_dir: Path, path: str) -> Path:
    """Return ``path`` relative to ``models_dir`` unless absolute."""
    p = Path(path)
    return p if p.is_absolute() else models_dir / p


#: The cutout triplet of ZTF's ACAI and braai models.
ZTF_TRIPLET = ["cutoutScience", "cutoutTemplate", "cutoutDifference"]

#: ACAI's 25 candidate features, in its input order (data MANIFEST, models/acai).
ACAI_FEATURES = [
    "drb", "diffmaglim", "ra", "dec", "magpsf", "sigmapsf", "chipsf", "fwhm", "sky",
    "chinr", "sharpnr", "sgscore1", "distpsnr1", "sgscore2", "distpsnr2", "sgscore3",
    "distpsnr3", "ndethist", "ncovhist", "scorr", "nmtchps", "clrcoeff", "clrcounc",
    "neargaia", "neargaiabright",
]  # fmt: skip

#: The real models shipped in ``../shared/data/models``.
DEFAULT_MODELS: dict[str, list[ModelSpec]] = {
    "ZTF": [
        ModelSpec(
            name="anomaly_score",
            # Fink's file names are swapped: the "_r" forest reads fid 1 (ZTF g), as
            # its anomaly_score and training script pair them (fink-science 7.4.0).
            file={1: "fink_aad/forest_r_AAD.onnx", 2: "fink_aad/forest_g_AAD.onnx"},
            inputs=[
                ModelInput(
                    name="X",
                    kind="lightcurve",
                    features={1: "fink_aad/r_means.csv", 2: "fink_aad/g_means.csv"},
                    window_days=30.0,
                )
            ],
            output="score",
            combine="mean",
            absent_score=0.0,
        ),
        ModelSpec(
            name="acai_h",
            file="acai/acai_h.d1_dnn_20201130.onnx",
            inputs=[
                ModelInput(name="features", kind="candidate", fields=ACAI_FEATURES),
                ModelInput(name="triplets", kind="cutouts", cutouts=ZTF_TRIPLET, size=63),
            ],
            output="score",
        ),
    ]
}


class MLSettings(Section):
    """The ML stage: where model files are and which models each survey runs."""

    #: Folder model paths are relative to (relative to the project root unless absolute).
    models_dir: str = "../shared/data/models"
    #: Models of each survey, by survey name; each writes ``classifications.<name>``.
    models: dict[str, list[ModelSpec]] = DEFAULT_MODELS
