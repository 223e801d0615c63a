"""ONNX Runtime twins: export, version stamps, and the detector scoring with them."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")

from fak3zer0.api.detector import Detector  # noqa: E402
from fak3zer0.cli import main as cli_main  # noqa: E402
from fak3zer0.errors import ModelError  # noqa: E402
from fak3zer0.models.checkpoint import load_checkpoint  # noqa: E402
from fak3zer0.models.hub import shipped_models  # noqa: E402
from fak3zer0.models.ort import OrtFrameModel, load_twin, twin_path  # noqa: E402


def test_shipped_twins_match_their_checkpoints():
    """Every shipped ONNX twin carries the stamp of the .pt beside it and computes the same logits;
    an 8-bit twin carries the stamp too and stays close to float32."""
    twins = [p for p in shipped_models().values() if twin_path(p).is_file()]
    assert twins, "the default model ships with an ONNX twin (fak3zer0 export fak3zer0-default)"
    for pt in twins:
        loaded = load_checkpoint(pt)
        twin = OrtFrameModel(twin_path(pt))
        assert twin.version == loaded.version, f"{twin_path(pt)} is stale: run `fak3zer0 export {pt}`"
        size = loaded.input_spec.size
        x = torch.randn(5, 3, size, size, generator=torch.Generator().manual_seed(1))
        with torch.inference_mode():
            expected = loaded.model(x).numpy()
        np.testing.assert_allclose(twin.logits(x.numpy()), expected, atol=1e-4, rtol=1e-3)
        if twin_path(pt, int8=True).is_file():
            q = OrtFrameModel(twin_path(pt, int8=True))
            assert q.version == loaded.version, f"{twin_path(pt, int8=True)} is stale: re-export with --int8"


@pytest.fixture()
def checkpoint_copy(tiny_checkpoint, tmp_path):
    return shutil.copy(tiny_checkpoint, tmp_path / "meso.pt")


def test_export_then_detect_uses_the_twin(checkpoint_copy, media_dir, capsys):
    pytest.importorskip("onnx", reason="exporting needs the onnx package")
    plain = Detector(str(checkpoint_copy), frames=6, backend="torch")
    assert cli_main(["export", str(checkpoint_copy)]) == 0
    assert twin_path(checkpoint_copy).is_file() and "version" in capsys.readouterr().out
    fast = Detector(str(checkpoint_copy), frames=6, device="cpu")
    assert (plain.backend, fast.backend) == ("torch", "onnx")
    a = plain.detect(media_dir / "astronaut_pan.mp4")
    b = fast.detect(media_dir / "astronaut_pan.mp4")
    assert a.verdict == b.verdict and a.fake_probability == pytest.approx(b.fake_probability, abs=1e-5)
    pa = [f.fake_probability for f in a.faces[0].frames]
    pb = [f.fake_probability for f in b.faces[0].frames]
    np.testing.assert_allclose(pa, pb, atol=1e-5)


def test_stale_or_missing_twin_falls_back_to_torch(checkpoint_copy, tmp_path):
    pytest.importorskip("onnx", reason="exporting needs the onnx package")
    from fak3zer0.models.ort import export_onnx

    loaded = load_checkpoint(checkpoint_copy)
    export_onnx(loaded.model, twin_path(checkpoint_copy), version="not-these-weights")
    assert load_twin(checkpoint_copy, loaded.version) is None
    assert Detector(str(checkpoint_copy), frames=4).backend == "torch"
    with pytest.raises(ModelError, match="fak3zer0 export"):
        Detector(str(checkpoint_copy), frames=4, backend="onnx")
    twin_path(checkpoint_copy).write_bytes(b"not an onnx file")
    assert load_twin(checkpoint_copy, loaded.version) is None


def test_onnx_backend_refuses_sequence_models():
    with pytest.raises(ModelError, match="single-frame"):
        Detector("i3d_lite0:imagenet", frames=4, backend="onnx")


def test_int8_twin_is_used_first_and_versioned_apart(checkpoint_copy, media_dir, astronaut):
    pytest.importorskip("onnx", reason="exporting needs the onnx package")
    import cv2

    from fak3zer0.models.inputs import crops_to_tensor
    from fak3zer0.models.ort import export_onnx, quantize_int8

    loaded = load_checkpoint(checkpoint_copy)
    size = loaded.input_spec.size
    rng = np.random.default_rng(0)
    crops = np.stack([cv2.resize(astronaut[y:y + 200, x:x + 200], (size, size))
                      for y, x in rng.integers(0, 300, size=(32, 2))])
    fp32 = export_onnx(loaded.model, twin_path(checkpoint_copy), version=loaded.version)
    q, report = quantize_int8(fp32, crops_to_tensor(crops, loaded.input_spec).numpy())
    assert q == twin_path(checkpoint_copy, int8=True) and q.stat().st_size < fp32.stat().st_size
    assert report["crops"] == 32 and report["mean_abs_diff"] < 0.1
    det = Detector(str(checkpoint_copy), frames=6)
    assert det.backend == "onnx-int8" and det.model_version == loaded.version + "+int8"
    exact = Detector(str(checkpoint_copy), frames=6, backend="onnx")
    assert exact.backend == "onnx" and exact.model_version == loaded.version
    a, b = det.detect(media_dir / "astronaut_pan.mp4"), exact.detect(media_dir / "astronaut_pan.mp4")
    assert abs(a.fake_probability - b.fake_probability) < 0.1


def test_export_int8_needs_calibration_data(checkpoint_copy, capsys):
    assert cli_main(["export", str(checkpoint_copy), "--int8"]) == 2
    assert "--calibration" in capsys.readouterr().err


def test_models_lists_the_backends_of_shipped_models(capsys):
    import json

    assert cli_main(["models", "--json", "--no-flops"]) == 0
    shipped = {s["name"]: s for s in json.loads(capsys.readouterr().out)["shipped"]}
    for name, pt in shipped_models().items():
        want = ["torch"] + [b for b, q in (("onnx", False), ("onnx-int8", True)) if twin_path(pt, q).is_file()]
        assert shipped[name]["backends"] == want
        assert shipped[name]["card"] == str(pt.with_suffix(".md"))  # every shipped model comes with its card
