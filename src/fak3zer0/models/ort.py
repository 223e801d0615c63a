"""ONNX Runtime twins of single-frame models: the fast path for scoring face crops on a CPU.

A checkpoint ``X.pt`` may have a twin ``X.onnx`` beside it: the same network exported to ONNX,
stamped with the checkpoint's version (its content digest), and an 8-bit twin ``X.int8.onnx``
(weights int8 per channel, activations uint8 with ranges measured on real face crops; another
~2.3x per crop on a CPU with VNNI; its fake probabilities differ from float32 by ~0.02 per video,
see the model card). ONNX Runtime runs EfficientNet-Lite0
at 160 px about twice as fast per crop as PyTorch on a small CPU (``python bench/model_speed.py``),
and scoring is the largest cost of a scan. The twin is only used when its stamp matches the
checkpoint, so a retrained ``X.pt`` never runs with stale ``X.onnx`` weights; without a twin,
without ``onnxruntime``, on a GPU or for sequence models, PyTorch scores as before.

Exporting needs the ``onnx`` package (``pip install fak3zer0[export]``); running needs only
``onnxruntime`` (a default dependency, no torch of its own).
"""
from __future__ import annotations

import importlib.util
import logging
import warnings
from pathlib import Path

import numpy as np
import torch

from fak3zer0.errors import ModelError

VERSION_KEY = "fak3zer0_version"
OPSET = 17


def onnxruntime_available() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None


def twin_path(checkpoint: str | Path, int8: bool = False) -> Path:
    return Path(checkpoint).with_suffix(".int8.onnx" if int8 else ".onnx")


def export_onnx(model: torch.nn.Module, path: str | Path, *, version: str, check: bool = True) -> Path:
    """Write ``model`` (a single-frame model) to ``path`` as ONNX with a dynamic batch axis.

    ``version`` is stored in the file's metadata; :func:`find_twin` only accepts a twin whose
    version equals the checkpoint's. With ``check`` the exported file is run once with ONNX
    Runtime (when installed) and compared with PyTorch.
    """
    if importlib.util.find_spec("onnx") is None:
        raise ModelError("exporting to ONNX needs the onnx package: pip install 'fak3zer0[export]'")

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
    _stamp(tmp, version)
    tmp.replace(path)
    if check and onnxruntime_available():
        got = OrtFrameModel(path).logits(x.numpy())
        if not np.allclose(got, expected, atol=1e-4, rtol=1e-3):
            path.unlink()
            raise ModelError(f"the ONNX export differs from PyTorch (max |diff| {np.abs(got - expected).max():.2e})")
    return path


def _stamp(path: Path, version: str) -> None:
    import onnx

    proto = onnx.load(str(path))
    for entry in proto.metadata_props:
        if entry.key == VERSION_KEY:
            entry.value = version
            break
    else:
        entry = proto.metadata_props.add()
        entry.key, entry.value = VERSION_KEY, version
    onnx.save(proto, str(path))


def resampling_nodes(graph: str | Path) -> list[str]:
    """Names of the matrix products an ensemble adds outside its members (``LogitEnsemble.member_input``)."""
    import onnx

    return [n.name for n in onnx.load(str(graph)).graph.node
            if n.op_type == "MatMul" and not n.name.startswith("/members.")]


def quantize_int8(fp32_twin: str | Path, crops: np.ndarray, *, out: str | Path | None = None,
                  batch: int = 8) -> tuple[Path, dict]:
    """Write the 8-bit twin of an exported float32 twin; returns its path and how far it moved.

    ``crops`` are model inputs (N, 3, H, W) float32 — real face crops, a few hundred — from which
    ONNX Runtime measures the activation ranges (static quantisation: per-channel int8 weights,
    uint8 activations, integer operators). No labels are used. An ensemble's own matrix products
    (the area resampling that feeds a smaller member, outside every member) stay float: in 8 bits they
    moved a 224/160 px ensemble's probabilities 0.040 on average instead of 0.033 (400 DFDC crops).
    The report compares the two twins on those crops: mean / max absolute difference of sigmoid(logit).
    """
    import tempfile

    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    fp32_twin = Path(fp32_twin)
    src = OrtFrameModel(fp32_twin, threads=1)
    out = Path(out) if out else fp32_twin.with_name(fp32_twin.stem + ".int8.onnx")
    batches = [np.ascontiguousarray(crops[i:i + batch], dtype=np.float32) for i in range(0, len(crops), batch)]

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self.left = iter(batches)

        def get_next(self):
            b = next(self.left, None)
            return None if b is None else {src.input_name: b}

    root = logging.getLogger()
    level = root.level
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        root.setLevel(logging.ERROR)  # the quantiser logs a warning per integer shape tensor it skips
        try:
            pre = Path(tmp) / "pre.onnx"
            quant_pre_process(str(fp32_twin), str(pre))
            staged = Path(tmp) / "int8.onnx"
            quantize_static(str(pre), str(staged), Reader(), quant_format=QuantFormat.QOperator, per_channel=True,
                            activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            nodes_to_exclude=resampling_nodes(pre))
        finally:
            root.setLevel(level)
        _stamp(staged, src.version or "")
        out.write_bytes(staged.read_bytes())
    q = OrtFrameModel(out, threads=1)
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    d = np.abs(sig(np.concatenate([q.logits(b) for b in batches])) -
               sig(np.concatenate([src.logits(b) for b in batches])))
    return out, {"crops": int(len(crops)), "mean_abs_diff": float(d.mean()), "max_abs_diff": float(d.max())}


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


def load_twin(checkpoint: str | Path | None, version: str, threads: int | None = None,
              int8: bool = False) -> OrtFrameModel | None:
    """The (8-bit with ``int8``) ONNX twin of ``checkpoint``, ready to run, when one exists, ONNX
    Runtime is installed and the twin's version stamp equals ``version``; otherwise None."""
    if not checkpoint or not version or not onnxruntime_available():
        return None
    path = twin_path(checkpoint, int8)
    if not path.is_file():
        return None
    try:
        twin = OrtFrameModel(path, threads)
    except Exception:  # noqa: BLE001 - a damaged twin is simply not used
        return None
    return twin if twin.version == version else None
