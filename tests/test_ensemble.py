"""Logit-averaging ensembles: built from checkpoints, saved and loaded as one model, explained, exported."""
from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from fak3zer0.errors import ModelError
from fak3zer0.explain import face_heatmap
from fak3zer0.models import create_model
from fak3zer0.models.checkpoint import load_checkpoint, save_checkpoint
from fak3zer0.models.ensemble import ensemble_from_checkpoints
from fak3zer0.models.inputs import crops_to_tensor

SIZE = 64


def _member(path: Path, seed: int, temperature: float, size: int = SIZE) -> Path:
    torch.manual_seed(seed)
    model = create_model("efficientnet_lite0", size=size)
    return save_checkpoint(path, model.eval(), temperature=temperature)


@pytest.fixture(scope="module")
def members(tmp_path_factory) -> list[Path]:
    d = tmp_path_factory.mktemp("members")
    return [_member(d / "a.pt", 0, 2.0), _member(d / "b.pt", 1, 0.5)]


def _x(n: int = 4) -> torch.Tensor:
    return torch.randn(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))


def test_logit_is_the_mean_of_the_members_logits(members):
    raw = ensemble_from_checkpoints(members).eval()
    scaled = ensemble_from_checkpoints(members, scaling="temperature").eval()
    a, b = (load_checkpoint(p) for p in members)
    x = _x()
    with torch.inference_mode():
        torch.testing.assert_close(raw(x), (a.model(x) + b.model(x)) / 2, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(scaled(x), (a.model(x) / 2.0 + b.model(x) / 0.5) / 2, atol=1e-5, rtol=1e-4)
    assert raw.input_spec == a.input_spec and raw.registry_name == "ensemble"
    with pytest.raises(ModelError, match="scaling"):
        ensemble_from_checkpoints(members, scaling="softmax")


def test_saved_ensemble_loads_as_one_model(members, tmp_path):
    ens = ensemble_from_checkpoints(members, scaling="temperature").eval()
    path = save_checkpoint(tmp_path / "ens.pt", ens, temperature=1.3)
    loaded = load_checkpoint(path)
    assert loaded.name == "ensemble" and loaded.temperature == pytest.approx(1.3)
    assert [m["temperature"] for m in loaded.config["members"]] == [2.0, 0.5]
    x = _x()
    with torch.inference_mode():
        torch.testing.assert_close(loaded.model(x), ens(x))


def test_members_must_share_their_input(members, tmp_path):
    torch.manual_seed(2)
    other = save_checkpoint(tmp_path / "c.pt", create_model("meso4", size=SIZE).eval(), temperature=1.0)
    with pytest.raises(ModelError, match="same input"):  # other normalisation
        ensemble_from_checkpoints([members[0], other])
    with pytest.raises(ModelError, match="do not nest"):
        create_model("ensemble", members=[{"model": "ensemble", "config": {}}])
    with pytest.raises(ModelError, match="at least one"):
        create_model("ensemble", members=[])


@pytest.fixture(scope="module")
def mixed_sizes(members, tmp_path_factory) -> list[Path]:
    """A 64 px member beside a 96 px one: the ensemble takes 96 px crops."""
    return [members[0], _member(tmp_path_factory.mktemp("big") / "big.pt", 4, 1.0, size=96)]


def test_area_matrix_shrinks_like_opencv_inter_area():
    from fak3zer0.models.ensemble import area_resize_matrix

    img = np.random.default_rng(1).uniform(0, 255, (224, 224, 3)).astype(np.float32)
    for dst in (160, 112, 200):
        shrink = area_resize_matrix(224, dst)
        ours = (shrink @ torch.from_numpy(img).permute(2, 0, 1) @ shrink.T).permute(1, 2, 0).numpy()
        np.testing.assert_allclose(ours, cv2.resize(img, (dst, dst), interpolation=cv2.INTER_AREA), atol=1e-3)
    with pytest.raises(ModelError, match="shrinks"):
        area_resize_matrix(160, 224)


def test_members_at_different_sizes_see_the_crop_at_their_own_size(mixed_sizes):
    ens = ensemble_from_checkpoints(mixed_sizes, weights=[1, 3]).eval()
    small, big = (load_checkpoint(p).model.eval() for p in mixed_sizes)
    assert ens.input_spec == big.input_spec and ens.input_spec.size == 96
    crops = np.random.default_rng(2).integers(0, 256, (3, 96, 96, 3), dtype=np.uint8)
    shrunk = np.stack([cv2.resize(c, (SIZE, SIZE), interpolation=cv2.INTER_AREA) for c in crops])
    with torch.inference_mode():
        expected = 0.25 * small(crops_to_tensor(shrunk, small.input_spec)) + 0.75 * big(crops_to_tensor(crops, big.input_spec))
        got = ens(crops_to_tensor(crops, ens.input_spec))
    # OpenCV rounds its shrunk crop to uint8; the ensemble shrinks in float: within that rounding
    torch.testing.assert_close(got, expected, atol=2e-2, rtol=0)
    heat = face_heatmap(ens, crops[0])
    assert heat.shape == (96, 96) and heat.max() == pytest.approx(1.0)


def test_mixed_size_ensemble_exports_to_one_onnx_graph(mixed_sizes, tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    pytest.importorskip("onnx", reason="exporting needs the onnx package")
    from fak3zer0.models.ort import OrtFrameModel, export_onnx

    ens = ensemble_from_checkpoints(mixed_sizes).eval()
    path = export_onnx(ens, tmp_path / "mixed.onnx", version="test")
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(5))
    with torch.inference_mode():
        expected = ens(x).numpy()
    np.testing.assert_allclose(OrtFrameModel(path).logits(x.numpy()), expected, atol=1e-4, rtol=1e-3)


def test_heatmap_sums_the_members_grad_cams(members):
    ens = ensemble_from_checkpoints(members)
    crop = np.random.default_rng(0).integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8)
    heat = face_heatmap(ens, crop)
    assert heat.shape == (SIZE, SIZE) and heat.min() >= 0 and heat.max() == pytest.approx(1.0)
    assert len(ens.cam_layer()) == 2


def test_exports_to_one_onnx_graph(members, tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    pytest.importorskip("onnx", reason="exporting needs the onnx package")
    from fak3zer0.models.ort import OrtFrameModel, export_onnx

    ens = ensemble_from_checkpoints(members).eval()
    path = export_onnx(ens, tmp_path / "ens.onnx", version="test")
    x = _x()
    with torch.inference_mode():
        expected = ens(x).numpy()
    np.testing.assert_allclose(OrtFrameModel(path).logits(x.numpy()), expected, atol=1e-4, rtol=1e-3)


def test_make_ensemble_tool_calibrates_on_the_validation_split(members, crop_cache, tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from make_ensemble import main

    out = tmp_path / "ens" / "model.pt"
    assert main([*map(str, members), "--cache", str(crop_cache), "--val", "0.5", "--test", "0.2",
                 "--threads", "1", "--out", str(out)]) == 0
    loaded = load_checkpoint(out)
    assert loaded.name == "ensemble" and loaded.temperature > 0
    assert loaded.metrics["n_val"] > 0 and 0 <= loaded.metrics["val_auc"] <= 1
    assert [m["version"] for m in loaded.meta["members"]] == [load_checkpoint(p).version for p in members]
    assert [m["temperature"] for m in loaded.config["members"]] == [1.0, 1.0]  # raw logits by default


def test_weights_are_normalised_and_applied(members):
    ens = ensemble_from_checkpoints(members, weights=[3, 1]).eval()
    a, b = (load_checkpoint(p) for p in members)
    x = _x()
    with torch.inference_mode():
        torch.testing.assert_close(ens(x), 0.75 * a.model(x) + 0.25 * b.model(x), atol=1e-5, rtol=1e-4)
    assert ens.weights == [0.75, 0.25]
    with pytest.raises(ModelError, match="weight"):
        ensemble_from_checkpoints(members, weights=[1, -1])


def test_second_weight_is_chosen_on_validation_within_the_allowance(members, crop_cache, tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    from make_ensemble import main

    out = tmp_path / "weighted.pt"
    assert main([*map(str, members), "--cache", str(crop_cache), "--val", "0.5", "--test", "0.2",
                 "--keep-first-within", "0.02", "--threads", "1", "--out", str(out)]) == 0
    loaded = load_checkpoint(out)
    choice = loaded.metrics["weight_choice"]
    aucs = {float(w): auc for w, auc in choice["val_auc_by_weight"].items()}
    assert set(aucs) == {round(0.05 * i, 2) for i in range(11)}
    w = choice["weight"]
    assert aucs[w] >= aucs[0.0] - 0.02 and all(a < aucs[0.0] - 0.02 for v, a in aucs.items() if v > w)
    assert [m["weight"] for m in loaded.config["members"]] == pytest.approx([1 - w, w])


def test_int8_twin_keeps_the_resampling_in_float(mixed_sizes, tmp_path):
    pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    onnx = pytest.importorskip("onnx", reason="exporting needs the onnx package")
    from fak3zer0.models.ort import OrtFrameModel, export_onnx, quantize_int8

    ens = ensemble_from_checkpoints(mixed_sizes).eval()
    fp32 = export_onnx(ens, tmp_path / "mixed.onnx", version="test")
    x = torch.randn(16, 3, 96, 96, generator=torch.Generator().manual_seed(6)).numpy()
    int8, report = quantize_int8(fp32, x)
    ops = [n.op_type for n in onnx.load(str(int8)).graph.node]
    assert ops.count("MatMul") == 2 and "QLinearConv" in ops  # shrink (two products) in float, members in 8 bits
    assert report["crops"] == 16 and report["max_abs_diff"] < 0.5
    assert OrtFrameModel(int8).logits(x).shape == (16,)
