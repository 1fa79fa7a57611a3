"""The ML stage: alert properties and model classifications, per batch of candids.

Pure input builders live here (light-curve features, cutout triplets, candidate
fields), the model registry turns config entries into ONNX sessions, and
:mod:`boom_tasks.ml.stage` runs them on a batch.
"""
