"""Training and evaluation end to end on a tiny cache written in the documented format.

Real "faces" are noise, fakes carry a visible grid; crops are 72 px, the model runs at 64,
so resizing is exercised too. Everything runs on one CPU thread in a few seconds.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fak3zer0.errors import ConfigError
from fak3zer0.evaluate.metrics import METRIC_KEYS
from fak3zer0.models.checkpoint import atomic_torch_save, load_checkpoint, read_checkpoint

torch.set_num_threads(1)

from conftest import VIDEO_CROP as CROP, write_video_cache as make_cache  # noqa: E402


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("train_eval")


@pytest.fixture(scope="module")
def cache(work) -> Path:
    return make_cache(work / "cache")


def config(cache: Path, out: Path, name: str, **over) -> dict:
    cfg = {
        "model": {"name": "meso4", "kwargs": {"size": 64}},
        "data": {"sources": [str(cache)]},
        "optim": {"lr": 0.01},
        "sched": {"name": "constant"},
        "train": {"epochs": 2, "batch_size": 8, "seed": 3, "device": "cpu", "threads": 1,
                  "balance": "weighted_sampler"},
        "output": {"dir": str(out), "name": name},
    }
    for dotted, value in over.items():
        sec, key = dotted.split("__")
        cfg[sec][key] = value
    return cfg


def rows(run: Path) -> list[dict]:
    with open(run / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def without_seconds(rs: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in rs]


@pytest.fixture(scope="module")
def run_a(cache, work) -> Path:
    from fak3zer0.train import train

    return train(config(cache, work / "runs", "a"))


# ---------------------------------------------------------------- config


def test_overrides_parse_as_yaml():
    from fak3zer0.train.config import apply_overrides, parse_override, resolve_config

    assert parse_override("train.epochs=5") == (["train", "epochs"], 5)
    assert parse_override("data.sources=[a, b]") == (["data", "sources"], ["a", "b"])
    assert parse_override("model.pretrained=null") == (["model", "pretrained"], None)
    assert parse_override("train.amp=true") == (["train", "amp"], True)
    cfg = resolve_config({"model": {"name": "meso4"}},
                         ["model.name=meso_inception4", "optim.lr=3e-4", "model.kwargs.size=64", "data.sources=c"])
    assert cfg["model"]["name"] == "meso_inception4" and cfg["optim"]["lr"] == pytest.approx(3e-4)
    assert cfg["model"]["kwargs"] == {"size": 64} and cfg["data"]["sources"] == ["c"]
    assert cfg["train"]["epochs"] == 10  # default kept
    assert apply_overrides({}, ["a.b.c=1"]) == {"a": {"b": {"c": 1}}}
    with pytest.raises(ConfigError, match="train.epochs"):
        resolve_config({}, ["train.epoch=3"])  # typo: suggestion names the real key
    with pytest.raises(ConfigError):
        parse_override("train.epochs")
    with pytest.raises(ConfigError):
        resolve_config({}, ["optim.name=adam"])
    with pytest.raises(ConfigError):
        resolve_config({}, ["train.epochs=two"])


def test_example_config_loads():
    from fak3zer0.train.config import load_config_file, resolve_config

    root = Path(__file__).resolve().parents[1] / "configs"
    # *.recipe.yaml files are multi-stage recipes for tools/reproduce_default.py (tested there), not training configs.
    paths = sorted(p for p in root.glob("*.yaml") if not p.name.endswith(".recipe.yaml"))
    assert paths, f"no training configs in {root}"
    for path in paths:
        cfg = resolve_config(load_config_file(path))
        assert cfg["model"]["name"]


def test_lr_schedule_warmup_and_cosine():
    from fak3zer0.train.config import resolve_config
    from fak3zer0.train.trainer import _lr_at

    cfg = resolve_config({}, ["optim.lr=1.0", "train.epochs=4", "sched.warmup_epochs=1", "sched.min_lr_ratio=0"])
    lrs = [_lr_at(s, 10, cfg) for s in range(40)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert lrs[10] == pytest.approx(1.0) and lrs[-1] < 0.01 and all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    step = resolve_config({}, ["optim.lr=1.0", "sched.name=step", "sched.step_size=2", "sched.gamma=0.5"])
    assert [_lr_at(e * 10, 10, step) for e in range(5)] == pytest.approx([1, 1, 0.5, 0.5, 0.25])


def test_default_eval_batch_is_small_on_a_cpu_only():
    from fak3zer0.defaults import CPU_BATCH_SIZE
    from fak3zer0.train.trainer import default_eval_batch_size

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert default_eval_batch_size(32, cpu) == CPU_BATCH_SIZE  # not 64: batches that stay in the cache
    assert default_eval_batch_size(2, cpu) == 4  # a clip model's small batch is kept as it was
    assert default_eval_batch_size(32, gpu) == 64


# ---------------------------------------------------------------- training


def test_run_folder_contents(run_a):
    for name in ("config.yaml", "best.pt", "last.pt", "metrics.csv", "loss.png", "auc.png", "calibration.json"):
        assert (run_a / name).is_file(), name
    rs = rows(run_a)
    assert [r["epoch"] for r in rs] == ["1", "2"]
    assert set(rs[0]) == {"epoch", "train_loss", "val_loss", "val_frame_auc", "val_video_auc", "lr", "seconds"}
    last = read_checkpoint(run_a / "last.pt")  # weights_only load, optimizer state included
    assert last["epoch"] == 2 and "state" in last["optimizer"] and last["train_state"]["global_step"] > 0
    best = load_checkpoint(run_a / "best.pt")
    assert best.name == "meso4" and best.input_spec.size == 64
    assert best.aggregation in ("mean", "median") and best.threshold == 0.5
    cal = json.loads((run_a / "calibration.json").read_text())
    assert best.temperature == pytest.approx(cal["temperature"]) and cal["n_inputs"] > 0
    assert read_checkpoint(run_a / "best.pt")["meta"]["train_config"]["train"]["epochs"] == 2


def test_training_is_deterministic(run_a, cache, work):
    from fak3zer0.train import train

    run_b = train(config(cache, work / "runs", "b"))
    assert without_seconds(rows(run_b)) == without_seconds(rows(run_a))
    sa, sb = read_checkpoint(run_a / "last.pt")["state_dict"], read_checkpoint(run_b / "last.pt")["state_dict"]
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_resume_continues_from_last_epoch(run_a, cache, work):
    from fak3zer0.train import train, train_from_cli

    run_c = train(config(cache, work / "runs", "c", train__epochs=1))
    first = rows(run_c)
    assert len(first) == 1
    with pytest.raises(ConfigError):  # the folder holds a run: no silent overwrite
        train(config(cache, work / "runs", "c", train__epochs=1))
    out = train_from_cli(None, ["train.epochs=2"], resume=str(run_c))
    assert out == run_c and read_checkpoint(run_c / "last.pt")["epoch"] == 2
    assert rows(run_c)[0] == first[0]  # epoch 1 was not redone (its timing is kept)
    assert "resuming" in (run_c / "train.log").read_text()
    # one epoch + resume == two epochs straight
    assert without_seconds(rows(run_c)) == without_seconds(rows(run_a))


# ---------------------------------------------------------------- evaluation


def test_evaluate_writes_metrics_and_plots(run_a, cache, work):
    from fak3zer0.evaluate import evaluate

    res = evaluate(run_a, [cache], out_dir=work / "eval", device="cpu")
    assert set(res["frame"]) == set(METRIC_KEYS) and set(res["video"]) == set(METRIC_KEYS)
    assert {"auc", "log_loss", "eer", "ap", "accuracy", "balanced_accuracy", "n"} <= set(res["video"])
    assert res["counts"]["videos"] == 12 and res["counts"]["entries_no_face"] == 1
    assert res["video"]["n"] == 12 and res["frame"]["n"] == 13 * 4
    assert set(res["video_by_rule"]) >= {"mean", "median"}
    for name in ("metrics.json", "metrics.md", "roc.png", "pr.png", "hist.png", "videos.csv"):
        assert (work / "eval" / name).is_file(), name
    assert json.loads((work / "eval" / "metrics.json").read_text())["video"]["n"] == 12
    val = evaluate(run_a, [cache], splits=["val"], device="cpu")
    assert val["video"]["n"] == 4 and val["out_dir"] is None


def test_matrix_from_cli(run_a, cache, work):
    from fak3zer0.evaluate import evaluate_from_cli

    other = make_cache(work / "cache2", n_videos=6, seed=1, n_val=0)
    m = evaluate_from_cli(f"{run_a},{run_a / 'last.pt'}", [str(cache), str(other)], None, str(work / "matrix"), True)
    assert m["rows"] == ["a", "a/last"] and m["columns"] == ["cache", "cache2"]
    assert set(m["cells"]["a"]["cache2"]["video"]) == set(METRIC_KEYS)
    for ext in ("md", "csv", "json"):
        assert (work / "matrix" / f"matrix.{ext}").is_file()
    assert "| a |" in (work / "matrix" / "matrix.md").read_text()


def test_calibrate_stores_temperature(run_a, cache, work):
    from fak3zer0.evaluate import calibrate

    ck = read_checkpoint(run_a / "best.pt")
    ck["calibration"] = {"temperature": 1.0}
    path = work / "uncal.pt"
    atomic_torch_save(ck, path)
    rep = calibrate(path, [cache], splits=["val"], device="cpu")
    assert rep["temperature"] > 0 and rep["temperature"] != 1.0
    assert rep["log_loss_after"] <= rep["log_loss_before"] + 1e-12
    assert rep["ece_before"] is not None and rep["ece_after"] is not None
    assert load_checkpoint(path).temperature == pytest.approx(rep["temperature"])


# ---------------------------------------------------------------- temporal inputs, SBI, augmentations


class _TinySeq(nn.Module):
    """(B, T, 3, H, W) -> (B,): per-frame conv features averaged over time."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, stride=4)
        self.fc = nn.Linear(4, 1)

    def forward(self, x):
        b, t = x.shape[:2]
        f = self.conv(x.flatten(0, 1)).mean((2, 3)).view(b, t, -1).mean(1)
        return self.fc(f).squeeze(1)


class _TinyLandmarks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3 * 5 * 2, 1)

    def forward(self, x):
        return self.fc(x.flatten(1)).squeeze(1)


def _register_test_models():
    from fak3zer0.models import REGISTRY, InputSpec

    if "_test_tiny_frames" not in REGISTRY.names():
        REGISTRY.register("_test_tiny_frames", input_spec=InputSpec(kind="frames", size=16, frames=3),
                          family="test")(lambda: _TinySeq())
        lm_spec = InputSpec(kind="landmarks", size=16, frames=3, landmarks=5)
        REGISTRY.register("_test_tiny_landmarks", input_spec=lm_spec, family="test")(lambda: _TinyLandmarks())


def test_cache_source_reads_the_index(cache):
    import json

    from fak3zer0.train.data import CacheSource

    src = CacheSource(cache)
    assert len(src.entries) == 12 and src.status_counts == {"ok": 12, "no_face": 1} and src.crop_size == CROP
    lines = [json.loads(x) for x in (cache / "index.jsonl").read_text().splitlines() if x.strip()]
    assert [e.key for e in src.entries] == [e["key"] for e in lines if e["status"] == "ok"]
    arrays = src.load(0)
    assert arrays["crops"].shape == (8, CROP, CROP, 3) and arrays["landmarks"].shape == (8, 5, 2)


def test_temporal_items_and_tensors(cache):
    from fak3zer0.models import InputSpec
    from fak3zer0.train.data import ArrayStore, CacheDataset, build_items, open_sources

    src = open_sources([str(cache)])
    keys = [(0, i) for i in range(len(src[0].entries))]
    for kind, shape in (("frames", (3, 3, 16, 16)), ("clip", (3, 3, 16, 16))):
        spec = InputSpec(kind=kind, size=16, frames=3)
        store = ArrayStore(src, 16, keys=keys)
        items = build_items(store, keys, spec)
        # 4 crops per track -> windows [0:3] and [1:4]; video 0 has two tracks
        assert len(items) == 13 * 2 and items[0].cover == (0, 1, 2)
        x, y, _ = CacheDataset(store, items, spec)[0]
        assert tuple(x.shape) == shape
        xt, _, _ = CacheDataset(store, items, spec, train=True, seed=1)[0]
        assert tuple(xt.shape) == shape
    spec = InputSpec(kind="landmarks", size=16, frames=3, landmarks=5)
    store = ArrayStore(src, 16, need_crops=False, keys=keys)
    x, _, _ = CacheDataset(store, build_items(store, keys, spec), spec)[0]
    assert tuple(x.shape) == (3, 5, 2) and 0.2 < float(x.min()) and float(x.max()) < 0.8  # crop-normalised


def test_train_temporal_and_landmark_models(cache, work):
    from fak3zer0.evaluate import evaluate
    from fak3zer0.train import train

    _register_test_models()
    for name in ("_test_tiny_frames", "_test_tiny_landmarks"):
        cfg = config(cache, work / "runs", name, train__epochs=1)
        cfg["model"] = {"name": name}
        run = train(cfg)
        res = evaluate(run, [cache], device="cpu")
        assert res["video"]["n"] == 12 and res["input_spec"]["kind"] in ("frames", "landmarks")


def test_sbi_adds_fakes_from_reals(cache, work, monkeypatch):
    from fak3zer0.data import sbi
    from fak3zer0.train import train

    calls = []

    def self_blend(crop, landmarks, rng, region="face"):  # a cheap stand-in, called through region_mix
        calls.append((landmarks.shape, region))
        out = crop.copy()
        out[8:24, 8:24] = (out[8:24, 8:24] * rng.uniform(0.5, 0.9)).astype(np.uint8)
        return out, np.zeros(crop.shape[:2], np.float32)

    monkeypatch.setattr(sbi, "self_blend", self_blend)
    run = train(config(cache, work / "runs", "sbi", train__epochs=1, data__synthesis="sbi"))
    assert calls and calls[0] == ((5, 2), "face") and {r for _, r in calls} == {"face"}
    log = (run / "train.log").read_text()
    # 8 training videos: 4 real x 4 crops (+4 for the two-face video) = 20 real crops -> 20 self-blended fakes
    assert "(20 real, 36 fake)" in log
    calls.clear()
    train(config(cache, work / "runs", "sbi-lower", train__epochs=1, data__synthesis="sbi",
                 data__synthesis_lower_face=1.0))
    assert calls and {r for _, r in calls} == {"lower"}
    with pytest.raises(ConfigError, match="synthesis_lower_face"):
        train(config(cache, work / "runs", "bad", data__synthesis="sbi", data__synthesis_lower_face=2))


def test_augmenter_is_reproducible():
    from fak3zer0.train.augment import DEFAULT_AUGMENT, Augmenter

    aug = Augmenter({**DEFAULT_AUGMENT, "jpeg": {"p": 1.0, "quality": [30, 30]}})
    crops = [np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)] * 2
    a = aug(crops, np.random.default_rng(5))
    b = aug(crops, np.random.default_rng(5))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert np.array_equal(a[0], a[1])  # one draw per item, same for every frame
    assert a[0].dtype == np.uint8 and a[0].shape == (32, 32, 3) and not np.array_equal(a[0], crops[0])
    assert Augmenter({"enabled": False})(crops, np.random.default_rng(0))[0] is crops[0]
    with pytest.raises(ConfigError):
        Augmenter({"jpg": {"p": 1}})


def test_epoch_sampler_balances_and_shards():
    from fak3zer0.train.trainer import EpochSampler

    labels = np.array([1] * 50 + [0] * 10)
    w = np.where(labels == 1, 1 / 50, 1 / 10)
    idx = list(EpochSampler(60, seed=0, weights=w))
    assert abs(labels[idx].mean() - 0.5) < 0.2
    s = EpochSampler(60, seed=0, weights=w)
    s.set_epoch(1)
    assert list(s) != idx
    shards = [list(EpochSampler(7, seed=1, rank=r, world=2)) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 4 and set(shards[0]) | set(shards[1]) == set(range(7))


def test_source_filters_for_leave_one_source_out(cache):
    from fak3zer0.train.data import CacheSource, open_sources

    assert len(CacheSource(cache, include_sources=["^te"]).entries) == 12
    assert CacheSource(cache, exclude_sources=["test"]).entries == []
    assert CacheSource(cache, kinds=["image"]).entries == []
    (src,) = open_sources([{"cache": str(cache), "exclude_sources": ["nothing-matches"], "kinds": ["video"]}])
    assert len(src.entries) == 12
