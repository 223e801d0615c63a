"""The scan pipeline shared by both engines.

::

    sources -> [feeder thread: stat, hash (threads), skip what the DB has] --tasks--> engine
    engine (local worker processes, or Ray actors): decode + faces (Detector.prepare)
          --prepared/records--> [sink thread: batched Detector.score, one DB transaction per batch]

Every queue is bounded, so memory does not grow with the number of files; each file's frames
live only inside the worker that decodes it (only face crops travel). Rows are committed in
batches, each batch in one transaction: killed at any moment, the database holds whole rows
only, and the next run skips exactly the committed files (rows are keyed by content hash +
model + model version, and written as upserts, so nothing is ever duplicated).
"""
from __future__ import annotations

import os
import queue
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable

from fak3zer0 import defaults
from fak3zer0.errors import Fak3Zer0Error
from fak3zer0.scan.hashing import path_key, sha256_file
from fak3zer0.scan.records import ScanRecord, ScanSummary, ScanTask, error_record, score_batch
from fak3zer0.scan.sources import SourceFile, expand_sources
from fak3zer0.store import ResultStore, result_row

END = ("end",)
FLUSH = ("flush",)  # engine -> sink: nothing more is coming soon, score the partial batch now
FEED_CHUNK = 64


@dataclass
class ScanOptions:
    """Everything ``fak3zer0 scan`` can be told; see :func:`scan`."""

    model: str = defaults.DEFAULT_MODEL
    frames: int = defaults.DEFAULT_FRAMES
    threshold: float | None = None
    device: str = defaults.DEFAULT_DEVICE
    face_detector: str = defaults.DEFAULT_FACE_DETECTOR
    threads: int | None = None          # CPU threads for the model (None: the Detector's default policy)
    detect_every: int = defaults.DETECT_EVERY  # face detector on every K-th sampled frame
    full_detect_every: int = defaults.FULL_DETECT_EVERY  # ... searching the whole frame on every N-th of those
    backend: str = "auto"               # how the model runs (Detector's backend)
    workers: int | None = None          # None: one per CPU core; 0: decode in this process
    engine: str = "local"               # "local" | "ray"
    ray_address: str | None = None
    rescan: bool = False
    retry_errors: bool = False
    batch_size: int = 16                # files per inference batch
    max_batch_crops: int = 1024         # ... or this many face crops, whichever comes first
    max_wait_s: float = 1.0             # score a partial batch after this long without a full one
    file_timeout_s: float = 600.0       # a worker stuck this long on one file is replaced (0: never)
    hash_threads: int = 2
    progress: bool = False


def default_workers() -> int:
    """One decode/face worker per CPU core. The model shares the cores from the main process:
    with the 8-bit twin it needs a third of what decoding + faces need, and a core left to it
    alone would idle (measured: 2 workers finish 16 clips in 7.3 s, 1 worker in 8.3 s, 2 cores)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 2
    return max(1, cpus)


def normalise_model(model: str) -> str:
    """A checkpoint path becomes absolute, so rows get the same model key from any folder."""
    p = os.path.expanduser(model)
    return os.path.abspath(p) if os.path.isfile(p) else model


def _put(q: queue.Queue, item, stop: threading.Event) -> bool:
    """Blocking put that gives up when ``stop`` is set."""
    while not stop.is_set():
        try:
            q.put(item, timeout=0.2)
            return True
        except queue.Full:
            continue
    return False


# ------------------------------------------------------------------ feeder

class Feeder(threading.Thread):
    """Stat, hash and de-duplicate files; emit tasks (to decode) and skips/failures (to the sink)."""

    def __init__(self, files: list[SourceFile], store: ResultStore, model: str, model_version: str,
                 opts: ScanOptions, tasks: queue.Queue, sink: queue.Queue, stop: threading.Event) -> None:
        super().__init__(name="fak3zer0-scan-feeder", daemon=True)
        self.files, self.store, self.model, self.version = files, store, model, model_version
        self.opts, self.tasks, self.sink, self.stop = opts, tasks, sink, stop
        self.claimed: set[str] = set()  # hashes handed out in this run (duplicates inside one run)
        self.next_id = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with ThreadPoolExecutor(max(1, self.opts.hash_threads), thread_name_prefix="fak3zer0-hash") as pool:
                i, size = 0, 2  # small chunks first, so the workers get their first files quickly
                while i < len(self.files):
                    if self.stop.is_set():
                        return
                    self._chunk(self.files[i:i + size], pool)
                    i, size = i + size, min(FEED_CHUNK, size * 2)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
            self.stop.set()
        finally:
            _put(self.tasks, END, self.stop)

    def _hash(self, path: str) -> tuple[str | None, str | None]:
        try:
            return sha256_file(path), None
        except OSError as exc:
            return None, f"cannot read the file ({exc.strerror or type(exc).__name__})"

    def _chunk(self, chunk: list[SourceFile], pool: ThreadPoolExecutor) -> None:
        cached = {} if self.opts.rescan else self.store.cached_file_hashes(f.path for f in chunk if f.exists)
        entries = []  # (SourceFile, task, error)
        to_hash = []
        for f in chunk:
            if not f.exists:
                _put(self.sink, ("missing", f), self.stop)
                continue
            task = ScanTask(-1, f.path, "")
            err = f.error
            try:
                st = os.stat(f.path)
                task.size_bytes, task.mtime_ns = int(st.st_size), int(st.st_mtime_ns)
            except OSError as exc:
                err = err or f"cannot read the file ({exc.strerror or type(exc).__name__})"
            hit = cached.get(f.path)
            if hit and task.size_bytes is not None and hit[:2] == (task.size_bytes, task.mtime_ns):
                task.content_hash = hit[2]
            elif task.size_bytes is not None:
                to_hash.append(task)
            entries.append((f, task, err))
        fresh: set[int] = set()
        for task, (h, herr) in zip(to_hash, pool.map(lambda t: self._hash(t.path), to_hash)):
            if h:
                task.content_hash = h
                fresh.add(id(task))
            else:
                for k, (f, t, e) in enumerate(entries):
                    if t is task:
                        entries[k] = (f, t, e or herr)
        for _, task, _err in entries:
            if not task.content_hash:
                task.content_hash = path_key(task.path)
        done = set()
        if not self.opts.rescan:
            done = self.store.existing_hashes((t.content_hash for _, t, _ in entries), self.model, self.version,
                                              include_errors=not self.opts.retry_errors)
        for _f, task, err in entries:
            cache = id(task) in fresh
            if task.content_hash in done or task.content_hash in self.claimed:
                if not _put(self.sink, ("skip", task, cache), self.stop):
                    return
                continue
            self.claimed.add(task.content_hash)
            task.task_id, self.next_id = self.next_id, self.next_id + 1
            item = ("record", error_record(task, err, model=self.model), cache) if err else ("task", task, cache)
            if not _put(self.sink if err else self.tasks, item, self.stop):
                return


# ------------------------------------------------------------------ sink

class Sink(threading.Thread):
    """Batches prepared inputs for the model (local engine), writes rows, keeps the summary and the bar."""

    def __init__(self, store: ResultStore, summary: ScanSummary, opts: ScanOptions, inbox: queue.Queue,
                 stop: threading.Event, detector=None, total: int = 0,
                 warn: Callable[[str], None] | None = None) -> None:
        super().__init__(name="fak3zer0-scan-sink", daemon=True)
        self.store, self.summary, self.opts, self.inbox, self.stop = store, summary, opts, inbox, stop
        self.detector = detector
        self.batch: list[tuple[ScanTask, Any]] = []
        self.batch_crops = 0
        self.batch_since = 0.0
        self.rows: list[ScanRecord] = []
        self.files: list[dict[str, Any]] = []
        self.skips = 0
        self.pending_since = 0.0
        self.error: BaseException | None = None
        self.bar = None
        self.total = total
        self.warn = warn or (lambda msg: print(msg, file=sys.stderr))
        self.finished = threading.Event()
        self.started = time.perf_counter()

    # progress ------------------------------------------------------------
    def _open_bar(self) -> None:
        if self.opts.progress:
            from tqdm import tqdm

            self.bar = tqdm(total=self.total, desc="scan", unit="file", file=sys.stderr, dynamic_ncols=True,
                            smoothing=0.05)
            self.warn = self.bar.write

    def _advance(self, n: int) -> None:
        if self.bar and n:
            s = self.summary
            self.bar.set_postfix_str(f"fake={s.fake} real={s.real} no_face={s.no_face} err={s.errors} "
                                     f"skip={s.skipped}", refresh=False)
            self.bar.update(n)

    # main loop -----------------------------------------------------------
    def run(self) -> None:
        self._open_bar()
        try:
            while True:
                timeout = 0.2
                try:
                    item = self.inbox.get(timeout=timeout)
                except queue.Empty:
                    item = None
                if self.stop.is_set():
                    # Interrupted: score what is already batched (it is done work), write, and leave.
                    self._flush_batch()
                    self._flush_rows()
                    return
                if item is None:
                    self._maybe_flush()
                    continue
                if item is END:
                    self._flush_batch()
                    self._flush_rows()
                    return
                self._handle(item)
                self._maybe_flush()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            self.error = exc
            self.stop.set()
        finally:
            if self.bar:
                self.bar.close()
            self.finished.set()

    def _handle(self, item) -> None:
        kind = item[0]
        now = time.monotonic()
        if kind == "missing":
            f: SourceFile = item[1]
            self.summary.missing += 1
            self.warn(f"fak3zer0: {f.path}: {f.error}")
            self._advance(1)
        elif kind == "skip":
            _, task, cache = item
            self.summary.skipped += 1
            if cache:
                self.files.append(_file_entry(task))
            self.skips += 1
            self.pending_since = self.pending_since or now
        elif kind == "record":
            _, rec, cache = item
            self.rows.append(rec)
            if cache:
                self.files.append(_file_entry(rec.task))
            self.pending_since = self.pending_since or now
        elif kind == "prepared":
            _, task, prepared, cache = item
            if not self.summary.startup_seconds:
                self.summary.startup_seconds = time.perf_counter() - self.started
            if cache:
                self.files.append(_file_entry(task))
            self.batch.append((task, prepared))
            self.batch_crops += _n_crops(prepared)
            self.batch_since = self.batch_since or now
        elif kind == "flush":
            self._flush_batch()
        else:
            raise Fak3Zer0Error(f"internal error: unknown pipeline item {kind!r}")

    def _maybe_flush(self) -> None:
        now = time.monotonic()
        if self.batch and (len(self.batch) >= self.opts.batch_size or self.batch_crops >= self.opts.max_batch_crops
                           or now - self.batch_since >= self.opts.max_wait_s):
            self._flush_batch()
        if (self.rows or self.files or self.skips) and (
                len(self.rows) >= 256 or len(self.files) >= 1024 or self.skips >= 256
                or now - self.pending_since >= self.opts.max_wait_s):
            self._flush_rows()

    def _flush_batch(self) -> None:
        if not self.batch:
            return
        tasks = [t for t, _ in self.batch]
        prepared = [p for _, p in self.batch]
        self.batch, self.batch_crops, self.batch_since = [], 0, 0.0
        self.rows.extend(score_batch(self.detector, tasks, prepared))
        self._flush_rows()

    def _flush_rows(self) -> None:
        if not (self.rows or self.files or self.skips):
            return
        s = self.summary
        rows = [result_row(content_hash=r.task.content_hash, model=s.model, model_version=s.model_version,
                           result=r.result, size_bytes=r.task.size_bytes, duration_s=r.duration_s)
                for r in self.rows]
        thumbs = [dict(content_hash=r.task.content_hash, model=s.model, model_version=s.model_version,
                       jpeg=r.thumbnail) for r in self.rows if r.thumbnail]
        try:
            self.store.put_scan_batch(results=rows, thumbnails=thumbs, files=self.files)
        except Exception as exc:  # noqa: BLE001 - stop the scan: nothing can be recorded
            raise Fak3Zer0Error(f"could not write to the results database {s.db} "
                                f"({type(exc).__name__}: {str(exc).splitlines()[0][:300]})") from exc
        for r in self.rows:  # counted once committed
            s.count(r.verdict)
            s.frames += int(r.result.get("frames_used") or 0)
            if r.verdict == "error":
                msg = f"fak3zer0: {r.task.path}: {r.result.get('error')}"
                if len(s.problems) < 20:
                    s.problems.append(msg)
                self.warn(msg)
        n = len(self.rows) + self.skips
        self.rows, self.files, self.skips, self.pending_since = [], [], 0, 0.0
        self._advance(n)


def _file_entry(task: ScanTask) -> dict[str, Any]:
    return dict(path=task.path, size_bytes=task.size_bytes, mtime_ns=task.mtime_ns, content_hash=task.content_hash)


def _n_crops(prepared) -> int:
    faces = getattr(prepared, "faces", None)
    return sum(len(t) for t in faces.tracks) if faces is not None else 0


# ------------------------------------------------------------------ entry point

def scan(sources: list[str], db: str, opts: ScanOptions | None = None, *,
         warn: Callable[[str], None] | None = None) -> ScanSummary:
    """Scan every media file named by ``sources`` into the results store ``db``; returns the summary.

    On Ctrl-C the scan stops cleanly (what was already scored is committed) and the summary comes
    back with ``interrupted=True``; running the same scan again finishes the rest.
    """
    opts = opts or ScanOptions()
    if opts.engine not in ("local", "ray"):
        raise Fak3Zer0Error(f"unknown engine {opts.engine!r}: use local or ray")
    if opts.frames < 1:
        raise Fak3Zer0Error("--frames must be at least 1")
    if opts.batch_size < 1:
        raise Fak3Zer0Error("--batch-size must be at least 1")
    opts.model = normalise_model(opts.model)
    files = expand_sources(sources)
    if not files:
        raise Fak3Zer0Error("nothing to scan: the sources name no files")
    if all(not f.exists for f in files):
        raise Fak3Zer0Error("nothing to scan: " + "; ".join(f"{f.path}: {f.error}" for f in files[:5]))
    store = ResultStore.open(db)
    if opts.engine == "ray":
        from fak3zer0.scan.ray_engine import run_ray

        return run_ray(files, store, opts, db=str(db), warn=warn)
    from fak3zer0.scan.local import run_local

    return run_local(files, store, opts, db=str(db), warn=warn)


def run_pipeline(files: list[SourceFile], store: ResultStore, opts: ScanOptions, summary: ScanSummary,
                 execute: Callable[[queue.Queue, queue.Queue, threading.Event], None], *, detector=None,
                 warn: Callable[[str], None] | None = None) -> ScanSummary:
    """Run feeder -> ``execute`` (the engine) -> sink, handling Ctrl-C and errors of every stage.

    ``execute(tasks, sink, stop)`` takes ScanTasks from ``tasks`` until END, puts ("prepared", ...)
    or ("record", ...) items on ``sink``, and returns when everything it took is delivered.
    """
    stop = threading.Event()
    tasks: queue.Queue = queue.Queue(maxsize=max(8, 4 * max(1, summary.workers)))
    inbox: queue.Queue = queue.Queue(maxsize=max(2 * opts.batch_size, 4 * max(1, summary.workers), 64))
    summary.total = len(files)
    feeder = Feeder(files, store, summary.model, summary.model_version, opts, tasks, inbox, stop)
    sink = Sink(store, summary, opts, inbox, stop, detector=detector, total=len(files), warn=warn)
    t0 = time.perf_counter()
    sink.start()
    feeder.start()
    interrupted = False
    try:
        execute(tasks, inbox, stop)
        if not stop.is_set():
            _put(inbox, END, stop)
        while not sink.finished.wait(0.2):  # the sink scores and writes what it holds, then stops
            pass
    except KeyboardInterrupt:
        interrupted = True
        stop.set()
        sink.finished.wait(30)
    except BaseException:
        stop.set()
        sink.finished.wait(30)
        raise
    finally:
        stop.set()
        feeder.join(5)
        summary.seconds = time.perf_counter() - t0
    for stage in (feeder, sink):
        if stage.error is not None:
            if isinstance(stage.error, KeyboardInterrupt):
                interrupted = True
                continue
            raise stage.error
    summary.interrupted = interrupted
    return summary
