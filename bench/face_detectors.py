"""Compare the face detectors that work offline here: accuracy on the same images, and speed at one thread.

    python bench/face_detectors.py [--mediapipe-python /tmp/mpvenv/bin/python] [--crops 300] [--frames 32]

Test sets, all prepared by this script so that every detector sees the same pixels:

  (a) ``crops``      seeded sample of DFDC 224 px face crops (half real, half fake) from ../shared/data/dev;
                     every crop holds a face. "located" = the best-scoring box has IoU >= 0.4 with the
                     reference region (the crop minus 10 % on the left and right, 5 % at the bottom;
                     the crops are tight, foreheads and chins are often cut).
  (b) ``dfdc_1080p`` N frames of each 1080p DFDC clip videos/fake/dfdc_sample_*.mp4 (fak3zer0.media.sample_frames);
                     one person per clip, face ~110-230 px, one clip dark. "located" = the best box's centre lies
                     in that clip's head zone (set by hand, loose); boxes centred elsewhere count as extra boxes.
  (c) ``synthetic``  scikit-image's astronaut() head pasted (feathered) into 1920x1080 scenes with the face
                     40/60/90/130 px wide, at 3 places, normal and dark (x0.3 + sensor noise), JPEG q80;
                     recall = a box with IoU >= 0.4 with the ground-truth face box.
  (d) ``face_free``  coffee(), rocket(), chelsea() (a cat; also upscaled to 1080p), the two empty synthetic
                     backgrounds, and seeded random crops of non-face scikit-image scenes: false positives.

Detectors: our MTCNN (max side 640 and 960), OpenCV Haar (640), and -- when ``--mediapipe-python`` points at a
separate venv with ``mediapipe==0.10.21`` -- MediaPipe face detection short range (model 0) and full range
(model 1), min_detection_confidence 0.5, given the full frame; plus full range given the frame downscaled to
640 (an extra row, to show what downscaling does for it). MediaPipe cannot live in the project venv (it pins
numpy<2), so this same file runs as a worker inside that venv (``--worker``): the main process saves the
prepared images to a temporary .npz, the worker writes its boxes and timings to JSON.

Speed: one thread (torch/OpenCV threads = 1, OMP_NUM_THREADS=1) and both processes pinned to the same single CPU
(MediaPipe starts helper threads of its own; pinning keeps it to one core too). Milliseconds are per image,
median over the set, detection only (decoding excluded; the detector's own downscale included).

Writes bench/results/face_detectors.json and docs/face-detectors.md and prints the table; ``--render-only``
rewrites the Markdown from an existing JSON without measuring again.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT.parent / "shared" / "data" / "dev"
IOU_MIN = 0.4
#: A detector is "usable" on CPU when a 1080p frame takes at most this long at one thread (32-frame clip < 16 s).
USABLE_MS_1080P = 500.0

#: Face box of scikit-image's astronaut() (512x512), checked by eye: cheek to cheek, hairline to chin.
ASTRONAUT_FACE = (176, 70, 270, 178)
#: Region of astronaut() pasted into the synthetic frames (head and shoulders).
ASTRONAUT_PATCH = (96, 0, 352, 300)
SYNTH_SIZES = (40, 60, 90, 130)  # face width in pixels in the 1920x1080 frame
SYNTH_CENTRES = ((420, 330), (1000, 560), (1520, 760))
#: Head zone of the one person in each 1080p DFDC clip (x1, y1, x2, y2), loose, set by looking at the frames.
DFDC_HEAD_ZONES = {
    "dfdc_sample_abofeumbvv": (820, 60, 1080, 400),
    "dfdc_sample_abqwwspghj": (700, 0, 1140, 420),
}
NEGATIVE_SCENES = ("coffee", "rocket", "chelsea", "motorcycle", "hubble_deep_field", "immunohistochemistry",
                   "retina", "coins", "brick", "grass", "gravel")

MP_VARIANTS = {  # name: (model_selection, max_side or None)
    "mediapipe-short": (0, None),
    "mediapipe-full": (1, None),
    "mediapipe-full@640": (1, 640),
}


def pin_to_one_cpu(cpu: int | None) -> int | None:
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = sorted(os.sched_getaffinity(0))[0] if cpu is None else cpu
    os.sched_setaffinity(0, {cpu})
    return cpu


# ---------------------------------------------------------------- MediaPipe worker (runs in the mediapipe venv)

def worker(npz_path: str, out_path: str, cpu: int | None) -> None:
    """Run MediaPipe's detectors over every image in ``npz_path``; write boxes + ms per image to JSON."""
    pin_to_one_cpu(cpu)
    import importlib.metadata as md

    import cv2
    import mediapipe as mp

    cv2.setNumThreads(1)
    pkg = Path(mp.__file__).parent / "modules" / "face_detection"
    facts = {
        "version": mp.__version__,
        "license": md.metadata("mediapipe").get("License", ""),
        "requires": md.requires("mediapipe") or [],
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "model_files": {p.name: p.stat().st_size for p in sorted(pkg.glob("*.tflite"))},
        "python": sys.version.split()[0],
    }
    images = np.load(npz_path)
    keys = list(images.files)
    out = {"facts": facts, "detectors": {}}
    for name, (model, max_side) in MP_VARIANTS.items():
        det = mp.solutions.face_detection.FaceDetection(model_selection=model, min_detection_confidence=0.5)

        def run(img):
            if max_side and max(img.shape[:2]) > max_side:
                s = max_side / max(img.shape[:2])
                img = cv2.resize(img, (round(img.shape[1] * s), round(img.shape[0] * s)), interpolation=cv2.INTER_AREA)
            return det.process(img)

        run(np.ascontiguousarray(images[keys[0]]))  # warm-up
        res = {}
        for k in keys:
            img = np.ascontiguousarray(images[k])
            h, w = img.shape[:2]
            t0, c0 = time.perf_counter(), time.process_time()
            r = run(img)
            ms, cpu_ms = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
            boxes = []
            for d in r.detections or []:
                bb = d.location_data.relative_bounding_box
                x1, y1 = bb.xmin * w, bb.ymin * h
                x2, y2 = x1 + bb.width * w, y1 + bb.height * h
                boxes.append([max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2), float(d.score[0])])
            res[k] = {"boxes": boxes, "ms": ms, "cpu_ms": cpu_ms}
        det.close()
        out["detectors"][name] = res
    Path(out_path).write_text(json.dumps(out))


# ---------------------------------------------------------------- test sets (main process)

def _scene(name: str) -> np.ndarray:
    from skimage import data

    img = data.stereo_motorcycle()[0] if name == "motorcycle" else getattr(data, name)()
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    return np.ascontiguousarray(img[:, :, :3])


def _jpeg(img: np.ndarray, q: int = 80) -> np.ndarray:
    import cv2

    ok, buf = cv2.imencode(".jpg", img[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, q])
    return np.ascontiguousarray(cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1])


def _darken(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    dark = img.astype(np.float32) * 0.3 + rng.normal(0, 3.0, img.shape)
    return np.clip(dark, 0, 255).astype(np.uint8)


def _background() -> np.ndarray:
    import cv2

    return cv2.resize(_scene("motorcycle"), (1920, 1080), interpolation=cv2.INTER_CUBIC)


def make_synthetic(seed: int) -> tuple[list[np.ndarray], list[dict]]:
    import cv2
    from skimage import data

    rng = np.random.default_rng(seed)
    ast = data.astronaut()
    px1, py1, px2, py2 = ASTRONAUT_PATCH
    patch = ast[py1:py2, px1:px2].astype(np.float32)
    ph, pw = patch.shape[:2]
    alpha = np.zeros((ph, pw), np.float32)
    cv2.ellipse(alpha, (pw // 2, ph // 2), (int(pw * 0.46), int(ph * 0.47)), 0, 0, 360, 1.0, -1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 8)[:, :, None]
    fx1, fy1, fx2, fy2 = ASTRONAUT_FACE
    face_w = fx2 - fx1
    bg = _background().astype(np.float32)
    images, metas = [], []
    for size in SYNTH_SIZES:
        k = size / face_w
        sw, sh = round(pw * k), round(ph * k)
        interp = cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC
        p, a = cv2.resize(patch, (sw, sh), interpolation=interp), cv2.resize(alpha, (sw, sh))[:, :, None]
        # face centre inside the scaled patch
        fcx, fcy = ((fx1 + fx2) / 2 - px1) * k, ((fy1 + fy2) / 2 - py1) * k
        for cx, cy in SYNTH_CENTRES:
            x0, y0 = int(round(cx - fcx)), int(round(cy - fcy))
            frame = bg.copy()
            region = frame[y0:y0 + sh, x0:x0 + sw]
            region[:] = region * (1 - a) + p * a
            gt = [x0 + (fx1 - px1) * k, y0 + (fy1 - py1) * k, x0 + (fx2 - px1) * k, y0 + (fy2 - py1) * k]
            frame8 = np.clip(frame, 0, 255).astype(np.uint8)
            for light in ("normal", "dark"):
                img = frame8 if light == "normal" else _darken(frame8, rng)
                images.append(_jpeg(img))
                metas.append({"size": size, "centre": [cx, cy], "light": light, "gt": [round(v, 1) for v in gt]})
    return images, metas


def make_face_free(seed: int, n_crops: int) -> tuple[list[np.ndarray], list[dict]]:
    import cv2

    rng = np.random.default_rng(seed)
    images, metas = [], []
    for name in ("coffee", "rocket", "chelsea"):
        images.append(_scene(name))
        metas.append({"name": name})
    images.append(cv2.resize(_scene("chelsea"), (1920, 1080), interpolation=cv2.INTER_CUBIC))
    metas.append({"name": "chelsea@1080p"})
    bg = _background()
    images += [_jpeg(bg), _jpeg(_darken(bg, rng))]
    metas += [{"name": "synthetic background"}, {"name": "synthetic background, dark"}]
    for i in range(n_crops):
        name = NEGATIVE_SCENES[i % len(NEGATIVE_SCENES)]
        img = _scene(name)
        h, w = img.shape[:2]
        ch = int(rng.integers(min(128, h), min(h, 480) + 1))
        cw = int(min(w, round(ch * rng.uniform(1.0, 1.5))))
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        images.append(np.ascontiguousarray(img[y:y + ch, x:x + cw]))
        metas.append({"name": f"{name} crop", "xywh": [x, y, cw, ch]})
    return images, metas


def load_crops(n: int, seed: int) -> tuple[list[np.ndarray], list[dict]]:
    import csv
    import random

    from fak3zer0.media.decode import read_image

    rows = [r for r in csv.DictReader(open(DATA / "manifest.csv", newline=""))
            if r["dataset"].startswith("DFDC-faces224") and r["kind"] == "image"]
    rows.sort(key=lambda r: r["relpath"])
    rnd = random.Random(seed)
    real = [r for r in rows if r["label"] == "real"]
    fake = [r for r in rows if r["label"] == "fake"]
    pick = rnd.sample(real, n // 2) + rnd.sample(fake, n - n // 2)
    images = [read_image(DATA / r["relpath"]) for r in pick]
    return images, [{"file": r["relpath"], "label": r["label"]} for r in pick]


def load_dfdc_frames(n: int) -> tuple[list[np.ndarray], list[dict]]:
    from fak3zer0.media import sample_frames

    images, metas = [], []
    for path in sorted((DATA / "videos" / "fake").glob("dfdc_sample_*.mp4")):
        zone = DFDC_HEAD_ZONES.get(path.stem)
        for fr in sample_frames(path, n):
            images.append(fr.image)
            metas.append({"clip": path.stem, "frame": fr.index, "zone": zone})
    return images, metas


# ---------------------------------------------------------------- scoring

def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _best(boxes):
    return max(boxes, key=lambda b: b[4]) if boxes else None


def _ms(results) -> dict:
    if not results:
        return {}
    ms, cpu = [r["ms"] for r in results], [r["cpu_ms"] for r in results]
    return {"ms_median": round(float(np.median(ms)), 2), "ms_mean": round(float(np.mean(ms)), 2),
            "cpu_ms_median": round(float(np.median(cpu)), 2)}


def score(sets: dict, res: dict) -> dict:
    """``res[set][i] = {"boxes": [[x1, y1, x2, y2, score], ...], "ms": float}`` for one detector."""
    out = {}
    # (a) crops
    rs, found, located = res["crops"], 0, 0
    for img, r in zip(sets["crops"]["images"], rs):
        h, w = img.shape[:2]
        ref = (0.1 * w, 0.0, 0.9 * w, 0.95 * h)
        found += bool(r["boxes"])
        b = _best(r["boxes"])
        located += bool(b and iou(b, ref) >= IOU_MIN)
    n = len(rs)
    out["crops"] = {"n": n, "found": found / n, "located": located / n, **_ms(rs)}
    # (b) 1080p DFDC frames
    rs, per_clip = res["dfdc_1080p"], {}
    for meta, r in zip(sets["dfdc_1080p"]["metas"], rs):
        c = per_clip.setdefault(meta["clip"], {"n": 0, "found": 0, "located": 0, "extra_boxes": 0})
        c["n"] += 1
        c["found"] += bool(r["boxes"])
        z = meta["zone"]

        def inside(b):
            cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
            return z is not None and z[0] <= cx <= z[2] and z[1] <= cy <= z[3]

        b = _best(r["boxes"])
        c["located"] += bool(b and inside(b))
        c["extra_boxes"] += sum(not inside(x) for x in r["boxes"])
    n = max(1, len(rs))
    out["dfdc_1080p"] = {
        "n": len(rs),
        "found": sum(c["found"] for c in per_clip.values()) / n,
        "located": sum(c["located"] for c in per_clip.values()) / n,
        "extra_boxes_per_frame": sum(c["extra_boxes"] for c in per_clip.values()) / n,
        "per_clip": {k: {"n": c["n"], "found": c["found"] / c["n"], "located": c["located"] / c["n"],
                         "extra_boxes": c["extra_boxes"]} for k, c in per_clip.items()},
        **_ms(rs),
    }
    # (c) synthetic small faces
    rs, hits, by_size, by_light, extra = res["synthetic"], [], {}, {}, 0
    for meta, r in zip(sets["synthetic"]["metas"], rs):
        ious = [iou(b, meta["gt"]) for b in r["boxes"]]
        hit = bool(ious) and max(ious) >= IOU_MIN
        hits.append(hit)
        by_size.setdefault(str(meta["size"]), []).append(hit)
        by_light.setdefault(meta["light"], []).append(hit)
        extra += sum(v < 0.1 for v in ious)
    n = len(rs)
    out["synthetic"] = {
        "n": n, "recall": sum(hits) / n,
        "recall_by_face_px": {k: sum(v) / len(v) for k, v in by_size.items()},
        "recall_by_light": {k: sum(v) / len(v) for k, v in by_light.items()},
        "extra_boxes_per_frame": extra / n, **_ms(rs),
    }
    # (d) face-free images
    rs = res["face_free"]
    fired = [m["name"] for m, r in zip(sets["face_free"]["metas"], rs) if r["boxes"]]
    n = len(rs)
    out["face_free"] = {"n": n, "images_with_fp": len(fired) / n,
                        "fp_per_image": sum(len(r["boxes"]) for r in rs) / n, "fired_on": fired, **_ms(rs)}
    big = [r for s in ("dfdc_1080p", "synthetic") for r in res[s]]
    out["ms_224"] = out["crops"]["ms_median"]
    out["cpu_ms_224"] = out["crops"]["cpu_ms_median"]
    out["ms_1080p"] = round(float(np.median([r["ms"] for r in big])), 2)
    out["cpu_ms_1080p"] = round(float(np.median([r["cpu_ms"] for r in big])), 2)
    out["accuracy"] = float(np.mean([out["crops"]["located"], out["dfdc_1080p"]["located"],
                                     out["synthetic"]["recall"], 1 - out["face_free"]["images_with_fp"]]))
    return out


def choose(scores: dict) -> dict:
    usable = {k: v for k, v in scores.items() if v["cpu_ms_1080p"] <= USABLE_MS_1080P}
    if not usable:
        return {"name": None, "reason": "no detector is usable"}
    top = max(v["accuracy"] for v in usable.values())
    near = [k for k, v in usable.items() if v["accuracy"] >= top - 0.01]  # within a point: speed decides
    name = min(near, key=lambda k: usable[k]["cpu_ms_1080p"])
    return {"name": name, "accuracy": scores[name]["accuracy"], "cpu_ms_1080p": scores[name]["cpu_ms_1080p"],
            "rule": f"highest accuracy (mean of: DFDC crops located, DFDC 1080p frames located, synthetic recall, "
                    f"1 - share of face-free images with a false positive) among the detectors that need at most "
                    f"{USABLE_MS_1080P:.0f} ms of CPU per 1080p frame at one thread (a 32-frame clip in under 16 s); "
                    f"within 0.01 of the best, the faster one"}


# ---------------------------------------------------------------- output

def pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def table_rows(scores: dict) -> list[list[str]]:
    rows = []
    for name, s in scores.items():
        syn = s["synthetic"]["recall_by_face_px"]
        rows.append([
            name,
            f"{pct(s['crops']['found'])} / {pct(s['crops']['located'])}",
            f"{pct(s['dfdc_1080p']['found'])} / {pct(s['dfdc_1080p']['located'])}",
            f"{s['dfdc_1080p']['extra_boxes_per_frame']:.2f} / {s['synthetic']['extra_boxes_per_frame']:.2f}",
            pct(s["synthetic"]["recall"]),
            " / ".join(pct(syn[str(k)]) for k in SYNTH_SIZES),
            pct(s["synthetic"]["recall_by_light"]["dark"]),
            f"{pct(s['face_free']['images_with_fp'])} ({s['face_free']['fp_per_image']:.2f})",
            f"{s['ms_224']:.1f} / {s['cpu_ms_224']:.1f}",
            f"{s['ms_1080p']:.0f} / {s['cpu_ms_1080p']:.0f}",
        ])
    return rows


HEADER = ["detector", "DFDC crops: found / located", "DFDC 1080p frames: found / located",
          "extra boxes per frame: DFDC 1080p / synthetic",
          "synthetic recall (IoU≥0.4)", f"by face px {'/'.join(map(str, SYNTH_SIZES))}", "synthetic dark",
          "face-free: images with FP (FP/img)", "ms 224 px (wall / CPU)", "ms 1080p (wall / CPU)"]


def markdown_table(scores: dict) -> str:
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in table_rows(scores)]
    return "\n".join(lines)


def print_table(scores: dict) -> None:
    short = ["detector", "crops f/l", "1080p f/l", "extra d/s", "synth", "40/60/90/130", "dark", "face-free FP",
             "ms224 wall/cpu", "ms1080p wall/cpu"]
    rows = [short] + table_rows(scores)
    widths = [max(len(r[i]) for r in rows) for i in range(len(short))]
    for i, r in enumerate(rows):
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))
        if i == 0:
            print("  ".join("-" * w for w in widths))


def _default_paragraph(scores: dict, ch: dict, defaults: dict) -> str:
    name, side = defaults["detector"], defaults["max_side"]
    cur = scores.get(f"{name}@{side}")
    best = ch.get("name")
    if not cur or not best:
        return ""
    others = [k for k in scores if not k.startswith(name)]
    crops = ", ".join(f"{k} {pct(scores[k]['crops']['found'])}" for k in others)
    lead = f"{name} at either size scores higher than every other detector measured. " if all(
        cur["accuracy"] > scores[k]["accuracy"] for k in others) else ""
    text = (f"The default detector is **{name}** (`DEFAULT_FACE_DETECTOR`), fed frames shrunk to max side {side} "
            f"(`DETECT_MAX_SIDE`). {lead}It found a face in "
            f"{pct(cur['crops']['found'])} of the tight DFDC crops ({crops}), located the person in "
            f"{pct(cur['dfdc_1080p']['located'])} of the 1080p DFDC frames and "
            f"{pct(cur['synthetic']['recall'])} of the synthetic faces, and fired on "
            f"{pct(cur['face_free']['images_with_fp'])} of the face-free images. ")
    if best == f"{name}@{side}":
        text += (f"The rule above picks this setting too, at {cur['cpu_ms_1080p']:.0f} ms of CPU per 1080p frame.")
    elif best.startswith(name + "@"):
        b = scores[best]
        small = str(min(SYNTH_SIZES))
        syn, syn0 = b["synthetic"]["recall_by_face_px"][small], cur["synthetic"]["recall_by_face_px"][small]
        ff, ff0 = b["face_free"]["images_with_fp"], cur["face_free"]["images_with_fp"]
        text += (f"The rule picks **{best}**, the same detector at a larger working size: MTCNN's smallest search "
                 f"window is 24 px in the shrunk frame, and at max side {side} a 1080p frame is shrunk "
                 f"{1920 / side:.1f}×, so a {small} px face becomes {int(small) * side // 1920} px. "
                 f"It raises synthetic recall from {pct(cur['synthetic']['recall'])} to "
                 f"{pct(b['synthetic']['recall'])} ({small} px faces: {pct(syn0)} → {pct(syn)}) "
                 f"and DFDC 1080p frames located from {pct(cur['dfdc_1080p']['located'])} to "
                 f"{pct(b['dfdc_1080p']['located'])}, with face-free images firing {pct(ff0)} → {pct(ff)}, "
                 f"for {b['cpu_ms_1080p']:.0f} instead of {cur['cpu_ms_1080p']:.0f} ms of CPU per 1080p frame "
                 f"(224 px crops cost the same). Recommendation: keep {name} and raise `DETECT_MAX_SIDE` to "
                 f"{best.split('@')[1]}; until then pass "
                 f"`build_face_detector(\"{name}\", max_side={best.split('@')[1]})` for wide shots with small faces.")
    else:
        b = scores[best]
        text += (f"The rule, however, picks **{best}** (accuracy {b['accuracy']:.3f} vs {cur['accuracy']:.3f}); "
                 "see the table before changing the default.")
    metrics = {"DFDC crops located": lambda v: v["crops"]["located"],
               "DFDC 1080p frames located": lambda v: v["dfdc_1080p"]["located"],
               "synthetic recall": lambda v: v["synthetic"]["recall"],
               "face-free images without a box": lambda v: 1 - v["face_free"]["images_with_fp"]}
    beaten = [f"{k} on {m} ({pct(f(scores[k]))} vs {pct(f(scores[best]))})"
              for m, f in metrics.items() for k in scores if f(scores[k]) > f(scores[best]) + 1e-9]
    if beaten:
        text += f" Where another row beats {best}: " + "; ".join(beaten) + "."
    fired = scores[best]["face_free"]["fired_on"]
    if fired:
        text += f" {best} fired on: {', '.join(fired)}"
        if "synthetic background" in fired:
            text += (" (a motorcycle headlight at score ~0.78, checked by eye; the same box is the extra box in every "
                     "normal-light synthetic frame)")
        text += "."
    if "haar@640" in scores:
        h = scores["haar@640"]
        text += (f" Haar stays only as a floor that needs nothing but OpenCV: it found {pct(h['crops']['found'])} of "
                 f"the tight crops and {pct(h['synthetic']['recall'])} of the synthetic faces.")
    return text


def _mediapipe_paragraph(scores: dict, mp: dict) -> str:
    if not mp.get("facts"):
        return f"Not measured in this run: {mp.get('skipped', 'no --mediapipe-python given')}."
    f = mp["facts"]
    np_pin = next((r for r in f["requires"] if r.replace(" ", "").startswith("numpy")), "numpy")
    sizes = ", ".join(f"`{k}` {v / 1024:.0f} KB" for k, v in f["model_files"].items())
    text = (
        f"`mediapipe=={f['version']}` (package licence: {f['license'] or 'see its metadata'}) ships both "
        f"face-detection models inside the wheel ({sizes}) and runs them offline through the legacy "
        "`mp.solutions.face_detection` API. It is the last release with `mp.solutions`: from 0.10.30 on there "
        "are no solutions and no bundled models, and the Tasks API needs a downloaded `.task` file. "
        "It requires `" + np_pin + "` (pip installed numpy "
        f"{f['numpy']}), `opencv-contrib-python` ({f['opencv']}; must not sit beside our opencv-python-headless), "
        "jax and jaxlib, and Python ≤ 3.12, so it cannot live in our venv (numpy 2); this benchmark runs it in a "
        "separate venv, pinned to the same single CPU. It returns a box and six key points (no mouth corners), "
        "and it resizes the whole frame to its small input (128 px short range, 192 px full range). ")
    s, fr = scores.get("mediapipe-short"), scores.get("mediapipe-full")
    if s and fr:
        text += (
            f"Measured: short range is fast ({s['cpu_ms_1080p']:.0f} ms CPU per 1080p frame) and found "
            f"{pct(s['crops']['found'])} of the close-up crops, but only {pct(s['dfdc_1080p']['located'])} of the "
            f"1080p DFDC frames and {pct(s['synthetic']['recall'])} of the synthetic faces; full range found "
            f"{pct(fr['crops']['found'])} of the close-up crops, {pct(fr['dfdc_1080p']['located'])} of the 1080p "
            f"frames and {pct(fr['synthetic']['recall'])} of the synthetic faces.")
        f6 = scores.get("mediapipe-full@640")
        if f6:
            text += (f" Shrinking the frame to 640 px ourselves first (`mediapipe-full@640`) gives "
                     f"{pct(f6['dfdc_1080p']['located'])} / {pct(f6['synthetic']['recall'])}.")
        dark = "dfdc_sample_abofeumbvv"
        if all(v["dfdc_1080p"]["per_clip"].get(dark, {}).get("located", 1) < 0.5 for v in (s, fr)):
            a, b = (pct(v["dfdc_1080p"]["per_clip"][dark]["located"]) for v in (s, fr))
            text += (f" Both miss the face in the dark clip ({dark}: {a} / {b} of frames), and small faces in dim "
                     "wide shots are common in deepfake videos.")
    return text


def write_markdown(path: Path, report: dict) -> None:
    scores, meta, sets = report["detectors"], report["meta"], report["sets"]
    ch = report["choice"]
    lines = [
        "# Face detectors: offline options compared",
        "",
        f"Measured by `bench/face_detectors.py` on {meta['date']} ({meta['machine']}). Every detector saw the same "
        "pixels. Speed: one thread and one pinned CPU, detection only (the detector's own downscale included), median "
        "per image, as wall-clock / CPU time. The machine was shared (load average "
        f"{meta['loadavg_start'][0]:.1f}–{meta['loadavg_end'][0]:.1f} on 2 cores), so wall-clock times are inflated "
        "and CPU times are the better guide to an idle core; compare rows, not absolute numbers.",
        "",
        markdown_table(scores),
        "",
        f"**DFDC crops**: {sets['crops']['n']} seeded DFDC 224 px face crops (half real, half fake; every one holds a "
        "face). *found* = any box; *located* = best box IoU ≥ 0.4 with the reference region (the crop minus 10 % "
        "left and right and 5 % at the bottom; the crops are tight, often cutting forehead and chin). "
        f"**DFDC 1080p frames**: {sets['dfdc_1080p']['n']} frames ({meta['frames_per_clip']} per clip, "
        "`fak3zer0.media.sample_frames`) of the two 1080p DFDC clips, one person each: face ~110 px in a dark room, "
        "~170 px in a bright one. *located* = best box centred in the person's head zone; *extra boxes* = boxes "
        f"centred elsewhere. **Synthetic**: {sets['synthetic']['n']} 1920×1080 frames with scikit-image's astronaut "
        f"head pasted into a garage scene with the face {', '.join(map(str, SYNTH_SIZES))} px wide, at 3 places, "
        "normal and dark (×0.3 + noise), JPEG q80; recall = some box with IoU ≥ 0.4 with the true face box. "
        f"**Face-free**: {sets['face_free']['n']} images without a face (coffee(), rocket(), chelsea() the cat, also "
        "upscaled to 1080p, the empty 1080p garage scene normal and dark, and seeded random crops of other "
        "scikit-image scenes): share of images with any box, and boxes per image. "
        "mtcnn@640 and mtcnn@960 differ only on images larger than 640 px. mediapipe-full@640 is an extra row: "
        "MediaPipe full range given the frame already shrunk to 640 px.",
        "",
        "## Choice",
        "",
    ]
    if ch.get("name"):
        lines.append(
            f"Rule (accuracy first, then speed): {ch['rule']}. Result: **{ch['name']}**. Accuracy scores: "
            + ", ".join(f"{k} {v['accuracy']:.3f}"
                        for k, v in sorted(scores.items(), key=lambda kv: -kv[1]["accuracy"]))
            + ".")
    para = _default_paragraph(scores, ch, report["project_defaults"])
    if para:
        lines += ["", para]
    lines += ["", "## MediaPipe", "", _mediapipe_paragraph(scores, report.get("mediapipe", {}))]
    lines += [
        "",
        "## Reproduce",
        "",
        "```sh",
        "python3 -m venv /tmp/mpvenv && /tmp/mpvenv/bin/pip install mediapipe==0.10.21   # its own venv: numpy<2",
        ". .venv/bin/activate",
        "OMP_NUM_THREADS=1 python bench/face_detectors.py --mediapipe-python /tmp/mpvenv/bin/python",
        "```",
        "",
        "Needs `../shared/data/dev` (DFDC crops and clips), scikit-image and the MTCNN weights (facenet-pytorch "
        "wheel). "
        f"Without `--mediapipe-python` the MediaPipe rows are skipped. It took {meta['seconds']:.0f} s here. "
        "Per-clip, per-face-size and per-light breakdowns, and which face-free images fired: "
        "`bench/results/face_detectors.json`.",
        "",
    ]
    path.write_text("\n".join(lines))


# ---------------------------------------------------------------- main

def run_ours(sets: dict) -> dict:
    import cv2
    import torch

    from fak3zer0.faces.detector import build_face_detector

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    dets = {"mtcnn@640": build_face_detector("mtcnn", max_side=640),
            "mtcnn@960": build_face_detector("mtcnn", max_side=960),
            "haar@640": build_face_detector("haar", max_side=640)}
    warm = [sets["crops"]["images"][0], sets["synthetic"]["images"][0]]
    for d in dets.values():
        for img in warm:
            d.detect(img)
    out = {name: {s: [] for s in sets} for name in dets}
    for s, content in sets.items():
        for img in content["images"]:
            for name, d in dets.items():  # interleaved, so load changes hit every detector alike
                t0, c0 = time.perf_counter(), time.process_time()
                faces = d.detect(img)
                ms, cpu_ms = (time.perf_counter() - t0) * 1000, (time.process_time() - c0) * 1000
                out[name][s].append({"ms": ms, "cpu_ms": cpu_ms,
                                     "boxes": [[*map(float, f.box), float(f.score)] for f in faces]})
    return out


def run_mediapipe(python: str, sets: dict, cpu: int | None) -> tuple[dict, dict]:
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="fdbench_") as tmp:
        npz, js = Path(tmp) / "images.npz", Path(tmp) / "mediapipe.json"
        arrays = {f"{s}_{i:04d}": img for s, c in sets.items() for i, img in enumerate(c["images"])}
        np.savez(npz, **arrays)
        env = dict(os.environ, OMP_NUM_THREADS="1", GLOG_minloglevel="2", TF_CPP_MIN_LOG_LEVEL="3")
        cmd = [python, str(Path(__file__).resolve()), "--worker", str(npz), str(js)]
        if cpu is not None:
            cmd += ["--cpu", str(cpu)]
        p = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"mediapipe worker failed ({p.returncode}):\n{p.stderr[-3000:]}")
        data = json.loads(js.read_text())
    res = {}
    for name, per_key in data["detectors"].items():
        res[name] = {s: [per_key[f"{s}_{i:04d}"] for i in range(len(c["images"]))] for s, c in sets.items()}
    return res, data["facts"]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mediapipe-python", help="python of a venv with mediapipe==0.10.21 (skipped when absent)")
    ap.add_argument("--crops", type=int, default=300, help="DFDC face crops to sample")
    ap.add_argument("--frames", type=int, default=32, help="frames per 1080p DFDC clip")
    ap.add_argument("--negative-crops", type=int, default=20, help="random crops of face-free scenes")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin to (default: the first allowed)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    ap.add_argument("--json", type=Path, default=HERE / "results" / "face_detectors.json")
    ap.add_argument("--markdown", type=Path, default=ROOT / "docs" / "face-detectors.md")
    ap.add_argument("--render-only", action="store_true",
                    help="only rewrite the Markdown (and print the table) from an existing --json")
    ap.add_argument("--worker", nargs=2, metavar=("NPZ", "JSON"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.worker:
        worker(*args.worker, None if args.no_pin else args.cpu)
        return 0

    if args.render_only:
        report = json.loads(args.json.read_text())
        print_table(report["detectors"])
        write_markdown(args.markdown, report)
        print(f"wrote {args.markdown} from {args.json}")
        return 0

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cpu = None if args.no_pin else pin_to_one_cpu(args.cpu)
    import platform

    import cv2
    import torch

    loadavg_start = os.getloadavg()
    t_start = time.perf_counter()
    sets = {}
    for name, (images, metas) in {
        "crops": load_crops(args.crops, args.seed),
        "dfdc_1080p": load_dfdc_frames(args.frames),
        "synthetic": make_synthetic(args.seed),
        "face_free": make_face_free(args.seed, args.negative_crops),
    }.items():
        sets[name] = {"images": images, "metas": metas}
    counts = ", ".join(f"{k} {len(v['images'])}" for k, v in sets.items())
    print(f"prepared {counts} "
          f"in {time.perf_counter() - t_start:.1f} s", flush=True)

    raw = run_ours(sets)
    mediapipe: dict = {}
    if args.mediapipe_python:
        mp_raw, facts = run_mediapipe(args.mediapipe_python, sets, cpu)
        raw.update(mp_raw)
        mediapipe = {"facts": facts, "python": args.mediapipe_python}
    else:
        mediapipe = {"skipped": "no --mediapipe-python given (MediaPipe needs its own venv: it pins numpy<2)"}
        print("note: MediaPipe skipped; pass --mediapipe-python /path/to/mpvenv/bin/python to include it")

    scores = {name: score(sets, r) for name, r in raw.items()}
    report = {
        "meta": {
            "date": time.strftime("%Y-%m-%d"),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
            "torch": torch.__version__, "opencv": cv2.__version__,
            "threads": 1, "pinned_cpu": cpu,
            "loadavg_start": [round(x, 2) for x in loadavg_start],
            "loadavg_end": [round(x, 2) for x in os.getloadavg()],
            "seconds": round(time.perf_counter() - t_start, 1),
            "seed": args.seed, "frames_per_clip": args.frames, "iou_min": IOU_MIN,
            "command": "python bench/face_detectors.py" + (" --mediapipe-python " + args.mediapipe_python
                                                             if args.mediapipe_python else ""),
        },
        "sets": {k: {"n": len(v["images"])} for k, v in sets.items()},
        "synthetic_frames": sets["synthetic"]["metas"],
        "dfdc_head_zones": DFDC_HEAD_ZONES,
        "mediapipe": mediapipe,
        "detectors": scores,
    }
    report["choice"] = choose(scores)
    from fak3zer0 import defaults

    report["project_defaults"] = {"detector": defaults.DEFAULT_FACE_DETECTOR, "max_side": defaults.DETECT_MAX_SIDE}
    print()
    print_table(scores)
    print(f"\nchoice: {report['choice'].get('name')} — {report['choice'].get('rule', '')}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    write_markdown(args.markdown, report)
    print(f"wrote {args.json} and {args.markdown} ({report['meta']['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
