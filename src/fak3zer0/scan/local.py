"""The local engine: decode + face worker processes feeding batched inference in this process.

Each worker is a process (forked from a fork server that has the imports done, or spawned where
there is none; see :func:`worker_context`) that builds a prepare-only Detector once (face detector, no
model) and talks to the main process over its own pipe, with at most two files outstanding.
Private pipes instead of a shared queue mean a worker can be killed (stuck on a file) or can
crash (a decoder bug) without leaving a shared lock held: the main process sees the death,
records an error row for the file that worker held, re-queues the others and starts a new
worker. The model runs in the main process (sink thread) on batches of files, on the GPU when
there is one, while the workers keep decoding.
"""
from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections import deque
from multiprocessing.connection import wait

from fak3zer0.errors import Fak3Zer0Error
from fak3zer0.scan.pipeline import END, FLUSH, ScanOptions, _put, default_workers, run_pipeline
from fak3zer0.scan.records import ScanSummary, error_record

PREFETCH = 2          # files sent to a worker before it finishes the current one
MAX_START_FAILURES = 3


def _worker_main(conn, settings: dict, threads: int) -> None:
    """Body of a worker process: build the preparer once, then prepare files until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's business
    try:
        import cv2
        import torch

        torch.set_num_threads(max(1, threads))
        cv2.setNumThreads(1)
        from fak3zer0.api.detector import Detector, PreparedMedia

        preparer = Detector.prepare_only(**settings, decode_threads=1)  # one file per worker
    except BaseException as exc:  # noqa: BLE001
        try:
            conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        except (OSError, ValueError):
            pass
        return
    try:
        conn.send(("ready", os.getpid()))
        while True:
            msg = conn.recv()
            if msg is None:
                conn.close()
                os._exit(0)  # nothing to flush; skips the interpreter's (torch's) slow teardown
            task_id, path = msg
            prepared = preparer.prepare(path)
            try:
                conn.send(("done", task_id, prepared))
            except (BrokenPipeError, ConnectionError):
                raise
            except Exception as exc:  # noqa: BLE001 - e.g. a result that cannot be pickled
                conn.send(("done", task_id, PreparedMedia(path, error=f"could not pass the decoded faces on "
                                                                      f"({type(exc).__name__}: {exc})")))
    except (EOFError, OSError):
        return  # the main process went away (killed): nothing left to do


class _Slot:
    """One worker process and the files it holds."""

    def __init__(self, ctx, settings: dict, threads: int, index: int) -> None:
        parent, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=_worker_main, args=(child, settings, threads), daemon=True,
                                name=f"fak3zer0-scan-{index}")
        self.proc.start()
        child.close()
        self.conn = parent
        self.outstanding: deque = deque()  # (task, cache) in the order sent
        self.ready = False
        self.head_since = 0.0

    def send(self, item) -> None:
        task, _cache = item
        if not self.outstanding:
            self.head_since = time.monotonic()
        self.outstanding.append(item)
        self.conn.send((task.task_id, task.path))

    def ask_to_stop(self) -> None:
        try:
            self.conn.send(None)
        except (OSError, ValueError):
            pass

    def stop(self, grace: float) -> None:
        self.ask_to_stop()
        self.proc.join(grace)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join(2)
        self.conn.close()

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(2)
        self.conn.close()


def worker_context(start: bool = False):
    """How worker processes start: from a fork server that has imported torch, OpenCV, PyAV and
    the face detector code once (each worker then starts in milliseconds instead of importing
    them itself, which took ~1.5 s per worker with both cores busy), or ``spawn`` where there is
    no fork server (Windows). Never a plain fork of this process: its threads and open database
    connections must not be copied."""
    import multiprocessing as mp

    if "forkserver" not in mp.get_all_start_methods():
        return mp.get_context("spawn")
    ctx = mp.get_context("forkserver")
    ctx.set_forkserver_preload(["fak3zer0.api.detector", "fak3zer0.faces.mtcnn"])
    if start:  # begin its imports now, while this process loads the model
        from multiprocessing import forkserver

        forkserver.ensure_running()
    return ctx


class WorkerPool:
    """``execute`` for :func:`run_pipeline` with N worker processes."""

    def __init__(self, settings: dict, workers: int, opts: ScanOptions, model: str, ctx=None) -> None:
        self.ctx = ctx or worker_context()
        self.settings, self.n, self.opts, self.model = settings, workers, opts, model
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:
            cpus = os.cpu_count() or 2
        self.threads = max(1, cpus // (workers + 1))
        self.slots: list[_Slot] = []
        self.spawned = 0
        self.start_failures = 0

    def _spawn(self) -> _Slot:
        self.spawned += 1
        return _Slot(self.ctx, self.settings, self.threads, self.spawned)

    def __call__(self, tasks: queue.Queue, inbox: queue.Queue, stop: threading.Event) -> None:
        retry: deque = deque()
        feeding = True
        try:
            while not stop.is_set():
                # 1. hand out files to workers with room; workers start (or restart) only when a
                #    file needs one, so a rerun that skips everything never starts them
                while retry or feeding:
                    free = [s for s in self.slots if len(s.outstanding) < PREFETCH]
                    if not free and len(self.slots) >= self.n:
                        break
                    if retry:
                        item = retry.popleft()
                    else:
                        busy = any(s.outstanding for s in self.slots)
                        try:
                            got = tasks.get_nowait() if busy else tasks.get(timeout=0.2)
                        except queue.Empty:
                            break
                        if got is END:
                            feeding = False
                            break
                        item = (got[1], got[2])
                    while len(self.slots) < self.n:
                        self.slots.append(self._spawn())
                    free = [s for s in self.slots if len(s.outstanding) < PREFETCH]
                    min(free, key=lambda s: len(s.outstanding)).send(item)
                if not any(s.outstanding for s in self.slots):
                    if not feeding and not retry:
                        # Score what the sink holds now, not after the workers have shut down.
                        _put(inbox, FLUSH, stop)
                        return
                    continue
                # 2. collect results, notice dead workers
                wait([s.conn for s in self.slots] + [s.proc.sentinel for s in self.slots], timeout=0.2)
                for slot in list(self.slots):
                    if not self._drain(slot, inbox, stop):
                        self._retire(slot, retry, inbox, stop, "crashed")
                # 3. give up on files a worker has been stuck on for too long (the worker is killed)
                limit = self.opts.file_timeout_s
                if limit and limit > 0:
                    now = time.monotonic()
                    for slot in list(self.slots):
                        if slot.ready and slot.outstanding and now - slot.head_since > limit:
                            self._retire(slot, retry, inbox, stop, "timeout")
        except BaseException:  # Ctrl-C or a fatal error: what the workers hold is dropped (rescanned next run)
            for slot in self.slots:
                slot.kill()
            self.slots = []
            raise
        finally:
            grace = 0.5 if stop.is_set() else 5.0
            for slot in self.slots:  # all at once, then wait for each
                slot.ask_to_stop()
            for slot in self.slots:
                slot.stop(grace)
            self.slots = []

    def _drain(self, slot: _Slot, inbox: queue.Queue, stop: threading.Event) -> bool:
        """Read every message the worker has sent; False when the worker is gone."""
        try:
            while slot.conn.poll():
                msg = slot.conn.recv()
                if msg[0] == "ready":
                    slot.ready = True
                    slot.head_since = time.monotonic()
                    self.start_failures = 0
                elif msg[0] == "done":
                    task, cache = slot.outstanding.popleft()
                    slot.head_since = time.monotonic()
                    if not _put(inbox, ("prepared", task, msg[2], cache), stop):
                        return True
                elif msg[0] == "failed":
                    raise Fak3Zer0Error(f"a scan worker could not start: {msg[1]}")
        except (EOFError, OSError):
            return False
        return slot.proc.is_alive()

    def _retire(self, slot: _Slot, retry: deque, inbox: queue.Queue, stop: threading.Event, why: str) -> None:
        """Kill a dead, stuck or failing worker: error row for its current file, its other files re-queued."""
        slot.kill()
        self.slots.remove(slot)
        code = slot.proc.exitcode
        if slot.outstanding and slot.ready:
            task, cache = slot.outstanding.popleft()
            if why == "timeout":
                msg = (f"gave up after {self.opts.file_timeout_s:g} s decoding this file "
                       f"(raise --file-timeout to allow more)")
            else:
                msg = f"the decoder crashed on this file (worker exit code {code})"
            _put(inbox, ("record", error_record(task, msg, model=self.model), cache), stop)
        elif not slot.ready:
            self.start_failures += 1
            if self.start_failures >= MAX_START_FAILURES:
                raise Fak3Zer0Error(f"scan workers keep dying while starting (exit code {code}); "
                                    "try --workers 0 to see the error in this process")
        retry.extend(slot.outstanding)
        slot.outstanding.clear()


class InProcess:
    """``execute`` for ``--workers 0``: decode in this process (the model still runs in the sink thread)."""

    def __init__(self, settings: dict) -> None:
        self.settings = settings

    def __call__(self, tasks: queue.Queue, inbox: queue.Queue, stop: threading.Event) -> None:
        from fak3zer0.api.detector import Detector

        preparer = None
        while not stop.is_set():
            try:
                item = tasks.get(timeout=0.2)
            except queue.Empty:
                continue
            if item is END:
                return
            _, task, cache = item
            preparer = preparer or Detector.prepare_only(**self.settings)
            if not _put(inbox, ("prepared", task, preparer.prepare(task.path), cache), stop):
                return


def run_local(files, store, opts: ScanOptions, *, db: str, warn=None) -> ScanSummary:
    workers = default_workers() if opts.workers is None else max(0, int(opts.workers))
    if workers:  # no more processes than files
        workers = min(workers, max(1, sum(1 for f in files if f.exists)))
    # The fork server starts importing torch & co. before this process does the same (next line),
    # so the two imports overlap on two cores instead of running one after the other.
    ctx = worker_context(start=True) if workers else None
    from fak3zer0.api.detector import Detector

    detector = Detector(opts.model, frames=opts.frames, threshold=opts.threshold, device=opts.device,
                        face_detector=opts.face_detector, threads=opts.threads, detect_every=opts.detect_every,
                        full_detect_every=opts.full_detect_every, backend=opts.backend)
    summary = ScanSummary(model=detector.model_name, model_version=detector.model_version, engine="local",
                          workers=workers, db=db)
    settings = detector.prepare_settings()
    execute = InProcess(settings) if workers == 0 else WorkerPool(settings, workers, opts, detector.model_name, ctx)
    return run_pipeline(files, store, opts, summary, execute, detector=detector, warn=warn)
