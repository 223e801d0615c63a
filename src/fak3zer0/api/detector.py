"""The detector: media -> faces -> model -> calibrated verdict, per face and per frame.

Two stages, so the batch scanner can run them in different processes:

* :meth:`Detector.prepare` (CPU): probe, sample frames, detect/track/crop faces. Never raises;
  a bad input comes back with ``error`` set.
* :meth:`Detector.score`: run the model on the crops of one or many prepared inputs in
  batches and build :class:`VideoVerdict` objects.

:meth:`Detector.detect` does both for one path.
"""
from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import torch

from fak3zer0 import defaults
from fak3zer0.api.results import FaceVerdict, FrameScore, VideoVerdict
from fak3zer0.errors import Fak3Zer0Error, MediaError, ModelError
from fak3zer0.evaluate.metrics import aggregate_probs
from fak3zer0.faces import FaceExtraction, build_face_detector, extract_faces, track_crops
from fak3zer0.media import MediaInfo, probe_media, sample_frames
from fak3zer0.models.inputs import crops_to_tensor, landmarks_to_tensor, pad_indices, sequence_to_tensor, window_starts

ProgressFn = Callable[[str, int, int], None]
#: How the model can run (see Detector).
BACKENDS = ("auto", "torch", "onnx", "onnx-int8")


@dataclass
class PreparedMedia:
    """Output of the CPU stage for one input."""

    path: str
    info: MediaInfo | None = None
    faces: FaceExtraction | None = None
    error: str | None = None
    seconds: float = 0.0


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ModelError("--device cuda was asked for but no CUDA GPU is available; use --device cpu")
    return torch.device(device)


def set_threads(threads: int | None) -> None:
    """Set torch's CPU threads: ``threads`` if given, else ``$FAK3ZER0_THREADS``, else half the cores.

    Oversubscribed threads are much slower than one (measured: 8 s vs 2.8 s for one clip on a busy
    2-core machine), and decoding/face detection need a core too, so we leave half the cores free.
    """
    import os

    if threads is None:
        env = os.environ.get("FAK3ZER0_THREADS")
        threads = int(env) if env else max(1, (os.cpu_count() or 2) // 2)
    torch.set_num_threads(max(1, int(threads)))


def aggregate(probs, rule: str) -> float:
    """Combine frame probabilities of one face: ``mean``, ``median``, ``logit_mean`` or ``top_half``."""
    return aggregate_probs(probs, rule)


def _safe_stem(path: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(path).stem)[:80] or "input"


class Detector:
    """Deepfake detector. ``Detector().detect("clip.mp4")`` -> :class:`VideoVerdict`.

    Args:
        model: shipped model name, checkpoint path, or ``arch:weights`` (see ``fak3zer0 models``).
        frames: how many frames to sample over the whole clip.
        threshold: fake probability at or above which the verdict is "fake" (default: the model's).
        device: ``cpu``, ``cuda`` or ``auto``.
        face_detector: ``mtcnn`` (default) or ``haar``.
        batch_size: face crops per model call (default: small on the CPU, where big batches
            fall out of the cache and run slower per crop; large on a GPU).
        backend: how the model runs: ``auto`` (on the CPU, the checkpoint's up-to-date 8-bit ONNX
            twin, else its float32 twin, else PyTorch; see :mod:`fak3zer0.models.ort`), ``torch``,
            ``onnx`` (float32 twin) or ``onnx-int8``. With the 8-bit twin the model version gets
            a ``+int8`` suffix, since its probabilities differ slightly.
    """

    def __init__(
        self,
        model: str = defaults.DEFAULT_MODEL,
        *,
        frames: int = defaults.DEFAULT_FRAMES,
        threshold: float | None = None,
        device: str = defaults.DEFAULT_DEVICE,
        face_detector: str = defaults.DEFAULT_FACE_DETECTOR,
        max_tracks: int = defaults.MAX_TRACKS,
        batch_size: int | None = None,
        threads: int | None = None,
        detect_every: int = defaults.DETECT_EVERY,
        full_detect_every: int = defaults.FULL_DETECT_EVERY,
        backend: str = "auto",
    ) -> None:
        from fak3zer0.models.hub import resolve_model

        set_threads(threads)

        if frames < 1:
            raise Fak3Zer0Error("frames must be at least 1")
        self.loaded = resolve_model(model)
        self.device = resolve_device(device)
        self.model = self.loaded.model.to(self.device).eval()
        self.spec = self.model.input_spec
        self.model_name = self.loaded.source or model
        self.model_version = self.loaded.version or "unversioned"
        self.frames = frames
        self.threshold = self.loaded.threshold if threshold is None else float(threshold)
        if not 0.0 <= self.threshold <= 1.0:
            raise Fak3Zer0Error("threshold must be between 0 and 1")
        self.face_detector_name = face_detector
        self.face_detector = build_face_detector(face_detector)
        self.max_tracks = max_tracks
        self.detect_every = detect_every
        self.full_detect_every = full_detect_every
        self.decode_threads: int | None = None  # FFmpeg threads per file (None: its own choice)
        self.batch_size = batch_size or (defaults.CPU_BATCH_SIZE if self.device.type == "cpu" else
                                         defaults.GPU_BATCH_SIZE)
        self.twin, self.backend = self._load_twin(backend)
        if self.backend == "onnx-int8":
            self.model_version += "+int8"
        # Channels-last activations: 1.2-1.5x faster per crop on the CPU for EfficientNet-Lite0
        # (bench/model_speed.py); only for models that take single 4-D frames.
        self.channels_last = self.twin is None and self.device.type == "cpu" and self.spec.kind == "frame"
        if self.channels_last:
            self.model.to(memory_format=torch.channels_last)

    def _load_twin(self, backend: str):
        """(ONNX twin or None, backend name) for the ``backend`` asked for; see the class docstring."""
        from fak3zer0.models.ort import load_twin, onnxruntime_available, twin_path

        if backend not in BACKENDS:
            raise Fak3Zer0Error(f"unknown backend {backend!r}: use one of {', '.join(BACKENDS)}")
        if backend == "torch" or self.device.type != "cpu" or self.spec.kind != "frame":
            if backend.startswith("onnx"):
                raise ModelError(f"the {backend} backend runs single-frame models on the CPU only")
            return None, "torch"
        for name, int8 in (("onnx-int8", True), ("onnx", False)):
            if backend in ("auto", name):
                twin = load_twin(self.loaded.path, self.loaded.version, int8=int8)
                if twin is not None:
                    return twin, name
                if backend == name:
                    why = ("onnxruntime is not installed" if not onnxruntime_available() else
                           f"{twin_path(self.loaded.path or 'model.pt', int8)} is missing or was exported "
                           f"from other weights")
                    flag = " --int8 --calibration CACHE" if int8 else ""
                    raise ModelError(f"--backend {name}: {why}; make one with "
                                     f"`fak3zer0 export {self.loaded.path or 'CKPT'}{flag}`")
        return None, "torch"

    @classmethod
    def prepare_only(
        cls,
        spec,
        *,
        frames: int = defaults.DEFAULT_FRAMES,
        face_detector: str = defaults.DEFAULT_FACE_DETECTOR,
        max_tracks: int = defaults.MAX_TRACKS,
        detect_every: int = defaults.DETECT_EVERY,
        full_detect_every: int = defaults.FULL_DETECT_EVERY,
        decode_threads: int | None = None,
    ) -> "Detector":
        """A Detector that can only :meth:`prepare` (no model is loaded), for decode/face worker processes.

        ``spec`` is the model's :class:`~fak3zer0.models.registry.InputSpec` (``detector.spec`` of a full
        Detector; :meth:`prepare_settings` gives all the arguments). :meth:`score` raises on it.
        ``decode_threads=1`` suits workers that each decode a file of their own (see ``sample_frames``).
        """
        if frames < 1:
            raise Fak3Zer0Error("frames must be at least 1")
        self = cls.__new__(cls)
        self.loaded = None
        self.device = torch.device("cpu")
        self.model = None
        self.spec = spec
        self.model_name, self.model_version = "", ""
        self.frames = frames
        self.threshold = defaults.DEFAULT_THRESHOLD
        self.face_detector_name = face_detector
        self.face_detector = build_face_detector(face_detector)
        self.max_tracks = max_tracks
        self.detect_every = detect_every
        self.full_detect_every = full_detect_every
        self.decode_threads = decode_threads
        self.batch_size = defaults.CPU_BATCH_SIZE
        self.twin, self.backend, self.channels_last = None, "none", False
        return self

    def prepare_settings(self) -> dict:
        """Keyword arguments for :meth:`prepare_only` that make a preparer equivalent to this Detector."""
        return {"spec": self.spec, "frames": self.frames, "face_detector": self.face_detector_name,
                "max_tracks": self.max_tracks, "detect_every": self.detect_every,
                "full_detect_every": self.full_detect_every}

    # ------------------------------------------------------------ stage 1: CPU
    def prepare(self, path: str | Path, progress: ProgressFn | None = None) -> PreparedMedia:
        path = str(path)
        t0 = time.perf_counter()
        out = PreparedMedia(path)
        try:
            out.info = probe_media(path)
            n = 1 if out.info.kind == "image" else self.frames
            total = min(n, max(out.info.frame_count, 1))
            cb = (lambda i: progress("faces", i + 1, total)) if progress else None
            frames = sample_frames(path, n, out.info, self.decode_threads)
            out.faces = extract_faces(frames, self.face_detector, self.spec.size,
                                      max_tracks=self.max_tracks, detect_every=self.detect_every,
                                      full_detect_every=self.full_detect_every, on_frame=cb)
        except MediaError as exc:
            out.error = str(exc)
        except (OSError, MemoryError) as exc:
            out.error = f"could not read the file ({type(exc).__name__}: {exc})"
        except Exception as exc:  # noqa: BLE001 - a decoder bug must not take the batch down
            out.error = f"unexpected failure while decoding ({type(exc).__name__}: {exc})"
        out.seconds = time.perf_counter() - t0
        return out

    # ------------------------------------------------------------ stage 2: model
    def _logits(self, batches: list[torch.Tensor]) -> np.ndarray:
        if not batches:
            return np.zeros(0)
        outs = []
        x_all = torch.cat(batches)
        with torch.inference_mode():
            for i in range(0, len(x_all), self.batch_size):
                if self.twin is not None:
                    outs.append(torch.from_numpy(self.twin.logits(x_all[i:i + self.batch_size].numpy())))
                    continue
                x = x_all[i:i + self.batch_size].to(self.device)
                if self.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                outs.append(self.model(x).float().cpu())
        return torch.cat(outs).numpy().reshape(-1)

    def _probs(self, logits: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-logits / self.loaded.temperature))

    def _face_inputs(self, track) -> tuple[list[torch.Tensor], list[np.ndarray]]:
        """Model inputs for one track and, per input, which of the track's items it covers."""
        spec = self.spec
        n = len(track)
        if spec.kind == "frame":
            return [crops_to_tensor(track_crops(track), spec)], [np.arange(n)]
        inputs, covers = [], []
        for s in window_starts(n, spec.frames):
            idx = np.arange(s, min(s + spec.frames, n))
            take = idx[pad_indices(len(idx), spec.frames)]
            if spec.kind == "landmarks":
                pts = np.stack([self._crop_landmarks(track.items[i][1]) for i in take])
                inputs.append(landmarks_to_tensor(pts))
            else:
                inputs.append(sequence_to_tensor(track_crops(track)[take], spec))
            covers.append(idx)
        return inputs, covers

    def _crop_landmarks(self, fb) -> np.ndarray:
        """Landmarks in crop-normalised coordinates (0..1 across the face crop)."""
        from fak3zer0.faces.crop import crop_transform, transform_points

        m = crop_transform(fb.box, self.spec.size)
        return transform_points(fb.landmarks, m) / self.spec.size

    def score(self, prepared: Iterable[PreparedMedia]) -> list[VideoVerdict]:
        """Score many prepared inputs with batched inference (one model pass over all their faces)."""
        if self.model is None:
            raise ModelError("this Detector was built with Detector.prepare_only() and has no model to score with")
        prepared = list(prepared)
        tensors: list[torch.Tensor] = []
        plan = []  # (input idx, track idx, covered item indices, number of model inputs)
        for i, p in enumerate(prepared):
            if p.error or p.faces is None:
                continue
            for j, track in enumerate(p.faces.tracks):
                inputs, covers = self._face_inputs(track)
                tensors.extend(inputs)
                for cov, x in zip(covers, inputs):
                    plan.append((i, j, cov, len(x)))
        t0 = time.perf_counter()
        probs = self._probs(self._logits(tensors))
        model_seconds = time.perf_counter() - t0
        per_item: dict[tuple[int, int], np.ndarray] = {}
        offset = 0
        for i, j, cov, count in plan:
            key = (i, j)
            arr = per_item.setdefault(key, np.zeros(len(prepared[i].faces.tracks[j])))
            chunk = probs[offset:offset + count]
            arr[cov] = chunk if count == len(cov) else chunk[0]
            offset += count
        n_with_faces = max(1, sum(1 for p in prepared if p.faces and p.faces.tracks))
        return [self._verdict(i, p, per_item, model_seconds / n_with_faces) for i, p in enumerate(prepared)]

    def _verdict(self, i: int, p: PreparedMedia, per_item, model_seconds: float) -> VideoVerdict:
        if p.error:
            return VideoVerdict.failed(p.path, p.error, model=self.model_name, seconds=p.seconds)
        frames_used = len(p.faces.frames)
        if not p.faces.tracks:
            return VideoVerdict(p.path, "no_face", None, [], frames_used, self.model_name, p.seconds, None)
        faces = []
        for j, track in enumerate(p.faces.tracks):
            probs = per_item[(i, j)]
            frames = [
                FrameScore(index=p.faces.frames[pos][0], time_s=p.faces.frames[pos][1],
                           box=tuple(float(v) for v in fb.box), fake_probability=float(pr))
                for (pos, fb), pr in zip(track.items, probs)
            ]
            faces.append(FaceVerdict(track.track_id, aggregate(probs, self.loaded.aggregation), frames))
        video_p = max(f.fake_probability for f in faces)
        verdict = "fake" if video_p >= self.threshold else "real"
        return VideoVerdict(p.path, verdict, video_p, faces, frames_used, self.model_name,
                            p.seconds + model_seconds, None)

    # ------------------------------------------------------------ one call
    def detect(self, path: str | Path, *, heatmap_dir: str | Path | None = None,
               progress: ProgressFn | None = None) -> VideoVerdict:
        prepared = self.prepare(path, progress=progress)
        verdict = self.score([prepared])[0]
        if heatmap_dir and verdict.faces:
            self.write_heatmaps(prepared, verdict, heatmap_dir)
        return verdict

    def detect_many(self, paths: Iterable[str | Path], *, heatmap_dir: str | Path | None = None,
                    progress: ProgressFn | None = None) -> Iterator[VideoVerdict]:
        for path in paths:
            yield self.detect(path, heatmap_dir=heatmap_dir, progress=progress)

    # ------------------------------------------------------------ explanations
    def write_heatmaps(self, prepared: PreparedMedia, verdict: VideoVerdict, out_dir: str | Path) -> list[Path]:
        """One PNG per face: its most suspicious crop beside a Grad-CAM overlay."""
        from fak3zer0.explain import face_heatmap, save_heatmap_png

        written = []
        stem = _safe_stem(prepared.path)
        for face, track in zip(verdict.faces, prepared.faces.tracks):
            k = int(np.argmax([f.fake_probability for f in face.frames]))
            crops = track_crops(track)
            if self.spec.kind in ("frames", "clip"):
                seq = crops[pad_indices(len(crops), self.spec.frames)]
                heat = face_heatmap(self.model, seq)
            elif self.spec.kind == "landmarks":
                continue  # a landmark model has no pixels to explain
            else:
                heat = face_heatmap(self.model, crops[k])
            title = f"face {face.track_id}  frame {face.frames[k].index}  fake p={face.frames[k].fake_probability:.2f}"
            path = save_heatmap_png(crops[k], heat, Path(out_dir) / f"{stem}_face{face.track_id}.png", title)
            face.heatmap = str(path)
            written.append(path)
        return written
