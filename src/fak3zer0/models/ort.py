"""ONNX Runtime twins of single-frame models: the fast path for scoring face crops on a CPU.

A checkpoint ``X.pt`` may have a twin ``X.onnx`` beside it: the same network exported to ONNX,
stamped with the checkpoint's version (its content digest). ONNX Runtime runs EfficientNet-Lite0
at 160 px about twice as fast per crop as PyTorch on a small CPU (``python bench/model_speed.py``),
and scoring is the largest cost of a scan. The twin is only used when its stamp matches the
checkpoint, so a retrained ``X.pt`` never runs with stale ``X.onnx`` weights; without a twin,
without ``onnxruntime``, on a GPU or for sequence models, PyTorch scores as before.

Exporting needs the ``onnx`` package (``pip install fak3zer0[export]``); running needs only
``onnxruntime`` (a default dependency, no torch of its own).
"""
from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import torch

from fak3zer0.errors import ModelError

VERSION_KEY = "fak3zer0_version"
OPSET = 17


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def twin_path(checkpoint: str | Path) -> Path:
    return Path(checkpoint).with_suffix(".onnx")


def export_onnx(model: torch.nn.Module, path: str | Path, *, version: str, check: bool = True) -> Path:
    """Write ``model`` (a single-frame model) to ``path`` as ONNX with a dynamic batch axis.

    ``version`` is stored in the file's metadata; :func:`find_twin` only accepts a twin whose
    version equals the checkpoint's. With ``check`` the exported file is run once with ONNX
    Runtime (when installed) and compared with PyTorch.
    """
    if importlib.util.find_spec("onnx") is None:
        raise ModelError("exporting to ONNX needs the onnx package: pip install 'fak3zer0[export]'")
    import onnx

    spec = getattr(model, "input_spec", None)
    if spec is None or spec.kind != "frame":
        raise ModelError("only single-frame models (input kind 'frame') can be exported to ONNX")
    model = model.float().eval()
    x = torch.randn(2, 3, spec.size, spec.size, generator=torch.Generator().manual_seed(0))
    path = Path(path)
    tmp = path.with_suffix(".onnx.tmp")
    with torch.inference_mode(), warnings.catch_warnings():
        # The tracer notes that "SAME" padding sizes become constants: they are, for a fixed crop size.
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(tmp), dynamo=False, input_names=["crops"], output_names=["logits"],
                          dynamic_axes={"crops": {0: "batch"}, "logits": {0: "batch"}}, opset_version=OPSET)
        expected = model(x).numpy()
    proto = onnx.load(str(tmp))
    entry = proto.metadata_props.add()
    entry.key, entry.value = VERSION_KEY, version
    onnx.save(proto, str(tmp))
    tmp.replace(path)
    if check and onnxruntime_available():
        got = OrtFrameModel(path).logits(x.numpy())
        if not np.allclose(got, expected, atol=1e-4, rtol=1e-3):
            path.unlink()
            raise ModelError(f"the ONNX export differs from PyTorch (max |diff| {np.abs(got - expected).max():.2e})")
    return path


class OrtFrameModel:
    """Scores (N, 3, H, W) float32 crops with ONNX Runtime on the CPU; returns (N,) logits."""

    def __init__(self, path: str | Path, threads: int | None = None) -> None:
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = max(1, threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        # No busy-waiting between calls: the scan's other processes need the cores.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self.version = self.session.get_modelmeta().custom_metadata_map.get(VERSION_KEY)
        self.input_name = self.session.get_inputs()[0].name

    def logits(self, crops: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(crops, dtype=np.float32)
        return np.asarray(self.session.run(None, {self.input_name: x})[0], dtype=np.float32).reshape(-1)


def load_twin(checkpoint: str | Path | None, version: str, threads: int | None = None) -> OrtFrameModel | None:
    """The ONNX twin of ``checkpoint``, ready to run, when one exists, ONNX Runtime is installed
    and the twin's version stamp equals ``version``; otherwise None (score with PyTorch)."""
    if not checkpoint or not version or not onnxruntime_available():
        return None
    path = twin_path(checkpoint)
    if not path.is_file():
        return None
    try:
        twin = OrtFrameModel(path, threads)
    except Exception:  # noqa: BLE001 - a damaged twin is simply not used
        return None
    return twin if twin.version == version else None
