"""One-off face-cropping of the dev images used for the first shipped model (v0).

Writes the documented cache format (docs/cache-format.md): one crop (224 px, margin 1.3,
largest MTCNN face) per image, group = the DFDC original. `fak3zer0 preprocess` is the general
tool; this script is kept so the shipped weights can be reproduced exactly:

    python tools/prep_dev_images.py CACHE_DIR && python tools/train_default.py --cache CACHE_DIR ...
"""
import csv, hashlib, json, os, sys, time
import numpy as np, torch
torch.set_num_threads(1)
from fak3zer0.media.decode import read_image
from fak3zer0.faces.detector import MTCNNDetector
from fak3zer0.faces.crop import crop_face, transform_points
from fak3zer0.paths import dev_data_dir
DEV = str(dev_data_dir()); OUT = sys.argv[1]; SIZE = 224
os.makedirs(OUT, exist_ok=True)
groups = {}
for r in csv.DictReader(open(f"{DEV}/labels/dfdc_faces224_metadata_subset.csv")):
    groups[r["videoname"].replace(".mp4", "")] = (r["original"] or r["videoname"]).replace(".mp4", "")
rows = [r for r in csv.DictReader(open(f"{DEV}/manifest.csv")) if r["kind"] == "image"]
done = set()
idx_path = f"{OUT}/index.jsonl"
if os.path.exists(idx_path):
    done = {json.loads(l)["key"] for l in open(idx_path) if l.strip()}
json.dump({"format": "fak3zer0.cache", "version": 1, "crop_size": SIZE, "margin": 1.3, "frames": 1,
           "face_detector": "mtcnn", "max_tracks": 1}, open(f"{OUT}/cache.json", "w"))
det = MTCNNDetector(max_side=640, min_face_size=40)
idx = open(idx_path, "a")
t0 = time.time()
for i, r in enumerate(rows):
    key = hashlib.sha1(r["relpath"].encode()).hexdigest()
    if key in done: continue
    path = f"{DEV}/{r['relpath']}"
    stem = os.path.splitext(os.path.basename(r["relpath"]))[0]
    vid = stem.replace("dfdc_face224_", "")
    e = {"key": key, "path": path, "video_id": vid, "label": int(r["label"] == "fake"),
         "group": groups.get(vid, vid), "split": "", "source": r["dataset"], "method": r["method"],
         "kind": "image", "status": "ok", "error": None, "n_crops": 0, "file": None}
    try:
        img = read_image(path)
        faces = det.detect(img)
        if not faces:
            e["status"] = "no_face"
        else:
            fb = max(faces, key=lambda f: f.area * f.score)
            crop, m = crop_face(img, fb.box, SIZE)
            rel = f"crops/{key[:2]}/{key}.npz"; os.makedirs(f"{OUT}/crops/{key[:2]}", exist_ok=True)
            tmp = f"{OUT}/{rel}.tmp.npz"
            np.savez(tmp, crops=crop[None], boxes=fb.box[None].astype(np.float32),
                     landmarks=transform_points(fb.landmarks, m)[None].astype(np.float32),
                     frame_index=np.zeros(1, np.int32), time_s=np.zeros(1, np.float32), track_id=np.zeros(1, np.int16))
            os.replace(tmp, f"{OUT}/{rel}")
            e["file"], e["n_crops"] = rel, 1
    except Exception as ex:
        e["status"], e["error"] = "error", str(ex)
    idx.write(json.dumps(e) + "\n"); idx.flush()
    if i % 500 == 0: print(i, len(rows), round(time.time() - t0), flush=True)
print("done", time.time() - t0)
