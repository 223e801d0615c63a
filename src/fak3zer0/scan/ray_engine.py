"""The Ray engine: the same pipeline, with decoding in Ray actors and the model in a scorer actor.

* ``_Preparer`` actors (one CPU each) build a prepare-only Detector once and run
  ``Detector.prepare`` on the files the driver hands them (by absolute path: every node must see
  the files at the same path, e.g. a shared mount).
* One ``_Scorer`` actor (a GPU when the cluster has one) loads the model once and scores
  batches; the prepared faces go from preparer to scorer through Ray's object store, not through
  the driver. Only the finished rows (JSON + a small thumbnail) come back.
* The driver hashes files, skips what the database has, and writes the rows: the database is
  only ever touched from the driver, so SQLite works as well as a database server.

Ray is optional: ``pip install 'fak3zer0[ray]'``.
"""
from __future__ import annotations

import math
import queue
import threading
import time

from fak3zer0 import defaults
from fak3zer0.errors import Fak3Zer0Error
from fak3zer0.scan.pipeline import END, ScanOptions, _put, run_pipeline
from fak3zer0.scan.records import ScanSummary, error_record, score_batch

MAX_SCORING = 2  # scorer calls in flight (one running, one queued)


def import_ray():
    try:
        import ray
    except ImportError:
        raise Fak3Zer0Error("--engine ray needs Ray, which is not installed: pip install 'fak3zer0[ray]' "
                            "(or use the default --engine local)") from None
    return ray


class _Preparer:
    """Ray actor: decode + faces (model-free Detector), built once per actor."""

    def __init__(self, settings: dict) -> None:
        import torch

        from fak3zer0.api.detector import Detector

        torch.set_num_threads(1)
        self.preparer = Detector.prepare_only(**settings, decode_threads=1)  # one file per actor

    def prepare(self, path: str):
        return self.preparer.prepare(path)


class _Scorer:
    """Ray actor: the model, loaded once, scoring batches of prepared files into records."""

    def __init__(self, model: str, frames: int, threshold, device: str, face_detector: str,
                 threads: int | None = None, detect_every: int = defaults.DETECT_EVERY,
                 full_detect_every: int = defaults.FULL_DETECT_EVERY, backend: str = "auto") -> None:
        from fak3zer0.api.detector import Detector

        self.detector = Detector(model, frames=frames, threshold=threshold, device=device,
                                 face_detector=face_detector, threads=threads, detect_every=detect_every,
                                 full_detect_every=full_detect_every, backend=backend)

    def describe(self) -> dict:
        d = self.detector
        return {"model": d.model_name, "version": d.model_version, "settings": d.prepare_settings(),
                "device": str(d.device)}

    def score(self, tasks: list, *prepared) -> list:
        return score_batch(self.detector, tasks, list(prepared))


class RayExecutor:
    """``execute`` for :func:`run_pipeline` on Ray actors."""

    def __init__(self, ray, preparers: list, scorer, opts: ScanOptions, model: str) -> None:
        self.ray, self.preparers, self.scorer, self.opts, self.model = ray, preparers, scorer, opts, model

    def __call__(self, tasks: queue.Queue, inbox: queue.Queue, stop: threading.Event) -> None:
        ray = self.ray
        n = len(self.preparers)
        load = [0] * n
        preparing: dict = {}   # ref -> (task, cache, actor index)
        ready: list = []       # (task, cache, ref, since) prepared, waiting for a scorer batch
        scoring: dict = {}     # ref -> [(task, cache, prepared ref)]
        feeding = True
        try:
            while not stop.is_set():
                while feeding and len(preparing) < 2 * n and len(ready) < 2 * self.opts.batch_size:
                    busy = bool(preparing or scoring or ready)
                    try:
                        item = tasks.get_nowait() if busy else tasks.get(timeout=0.2)
                    except queue.Empty:
                        break
                    if item is END:
                        feeding = False
                        break
                    _, task, cache = item
                    k = min(range(n), key=load.__getitem__)
                    load[k] += 1
                    preparing[self.preparers[k].prepare.remote(task.path)] = (task, cache, k)
                now = time.monotonic()
                drained = not feeding and not preparing
                while ready and len(scoring) < MAX_SCORING and (
                        len(ready) >= self.opts.batch_size or drained or now - ready[0][3] >= self.opts.max_wait_s):
                    batch, ready = ready[:self.opts.batch_size], ready[self.opts.batch_size:]
                    ref = self.scorer.score.remote([t for t, _, _, _ in batch], *[r for _, _, r, _ in batch])
                    scoring[ref] = [(t, c, r) for t, c, r, _ in batch]
                if not (feeding or preparing or ready or scoring):
                    return
                pending = list(preparing) + list(scoring)
                if not pending:
                    continue
                done, _ = ray.wait(pending, num_returns=len(pending), timeout=0.2, fetch_local=False)
                for ref in done:
                    if ref in preparing:
                        task, cache, k = preparing.pop(ref)
                        load[k] -= 1
                        ready.append((task, cache, ref, time.monotonic()))
                    else:
                        batch = scoring.pop(ref)
                        for rec, cache in self._records(ref, batch):
                            if not _put(inbox, ("record", rec, cache), stop):
                                return
        finally:
            for ref in list(preparing) + list(scoring):
                try:
                    ray.cancel(ref, force=True)
                except Exception:  # noqa: BLE001 - best effort on the way out
                    pass

    def _records(self, ref, batch):
        """Records of a finished scorer call; a failed call is retried file by file to find the culprit."""
        try:
            recs = self.ray.get(ref)
            return [(r, c) for r, (_, c, _) in zip(recs, batch)]
        except Exception as exc:  # noqa: BLE001 - e.g. the preparer of one file died
            if len(batch) == 1:
                task, cache, _ = batch[0]
                return [(error_record(task, _ray_error(exc), model=self.model), cache)]
            out = []
            for item in batch:
                out.extend(self._records(self.scorer.score.remote([item[0]], item[2]), [item]))
            return out


def _ray_error(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = next((line for line in text if line.strip()), type(exc).__name__)
    if "ActorDiedError" in type(exc).__name__ or "actor died" in str(exc).lower():
        return f"the decoder crashed on this file (Ray actor died: {first[:200]})"
    return f"failed on the Ray cluster ({type(exc).__name__}: {first[:300]})"


def run_ray(files, store, opts: ScanOptions, *, db: str, warn=None) -> ScanSummary:
    ray = import_ray()
    started_here = False
    if not ray.is_initialized():
        kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        if opts.ray_address:
            ray.init(address=opts.ray_address, **kwargs)
        else:
            cpus = None if opts.workers is None else max(1, opts.workers) + 1
            ray.init(num_cpus=cpus, **kwargs)
        started_here = True
    try:
        res = ray.cluster_resources()
        cpus = float(res.get("CPU", 1))
        gpus = float(res.get("GPU", 0))
        use_gpu = gpus >= 1 and opts.device in ("auto", "cuda")
        if opts.device == "cuda" and not use_gpu:
            raise Fak3Zer0Error("--device cuda was asked for but the Ray cluster has no GPU")
        scorer_cpus = 1 if cpus >= 2 else 0
        room = max(1, math.floor(cpus - scorer_cpus))
        n = room if opts.workers is None else max(1, min(opts.workers, room))
        Scorer = ray.remote(num_cpus=scorer_cpus, num_gpus=1 if use_gpu else 0, max_restarts=3)(_Scorer)
        scorer = Scorer.remote(opts.model, opts.frames, opts.threshold, "cuda" if use_gpu else "cpu",
                               opts.face_detector, opts.threads, opts.detect_every, opts.full_detect_every,
                               opts.backend)
        try:
            info = ray.get(scorer.describe.remote())
        except Exception as exc:  # noqa: BLE001
            raise Fak3Zer0Error(f"the model could not be loaded on the Ray cluster: {_ray_error(exc)}") from None
        Preparer = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=0)(_Preparer)
        preparers = [Preparer.remote(info["settings"]) for _ in range(n)]
        summary = ScanSummary(model=info["model"], model_version=info["version"], engine="ray", workers=n, db=db)
        execute = RayExecutor(ray, preparers, scorer, opts, info["model"])
        try:
            return run_pipeline(files, store, opts, summary, execute, warn=warn)
        finally:
            for actor in preparers + [scorer]:
                try:
                    ray.kill(actor)
                except Exception:  # noqa: BLE001
                    pass
    finally:
        if started_here:
            ray.shutdown()
