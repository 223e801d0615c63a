"""Bounded analysis queue and the worker processes that drain it.

* :meth:`WorkerPool.submit` appends an analysis id to a bounded in-memory queue
  (:class:`QueueFull` past ``queue_size`` waiting analyses); the row in the store is the record.
* One supervisor thread per worker takes ids from the queue and hands each to its own worker
  process (spawned lazily, reused across jobs). The supervisor writes progress and the result to
  the store, enforces the per-analysis time limit by killing the process, and turns a crash into a
  failed analysis. Request handlers never wait for any of this.
* Restart recovery (:meth:`recover`): analyses left ``queued`` or ``running`` by a previous server
  process are re-queued and analysed again from their stored upload (the work is idempotent);
  one whose upload is gone is marked failed.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sqlalchemy import select

from fak3zer0.server.catalog import ModelCatalog
from fak3zer0.server.settings import Settings
from fak3zer0.store import ResultStore, analyses

log = logging.getLogger("fak3zer0.server")


class QueueFull(Exception):
    pass


def heatmap_url(analysis_id: str, track_id: int) -> str:
    return f"/api/v1/analyses/{analysis_id}/faces/{int(track_id)}/heatmap.png"


def heatmap_file(settings: Settings, analysis_id: str, track_id: int) -> Path:
    """Where the heat map of one face lives; both parts are validated values (UUID, int)."""
    return settings.heatmaps_dir / analysis_id / f"face{int(track_id)}.png"


class _Worker:
    """One supervisor thread and its worker process."""

    def __init__(self, pool: "WorkerPool", index: int) -> None:
        self.pool = pool
        self.index = index
        self.proc: subprocess.Popen | None = None
        self.conn = None
        self.thread = threading.Thread(target=self.run, name=f"fak3zer0-worker-{index}", daemon=True)

    # ------------------------------------------------------------ process
    def _start_process(self) -> str | None:
        """Start the worker process and wait until it is ready; an error message on failure."""
        s = self.pool.settings
        config = {"threads": s.torch_threads, "device": s.device, "face_detector": s.face_detector,
                  "threshold": s.threshold, "preload": self.pool.catalog.get(self.pool.catalog.default).spec}
        ours, theirs = socket.socketpair()
        env = dict(os.environ, OMP_NUM_THREADS=str(s.torch_threads), MKL_NUM_THREADS=str(s.torch_threads))
        try:
            proc = subprocess.Popen([sys.executable, "-m", "fak3zer0.server.worker", str(theirs.fileno()),
                                     json.dumps(config)], pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL,
                                    env=env, close_fds=True)
        except OSError as exc:
            ours.close()
            return f"the analysis worker could not start ({exc})"
        finally:
            theirs.close()
        self.proc, self.conn = proc, Connection(ours.detach())
        deadline = time.monotonic() + s.worker_start_timeout_s
        while time.monotonic() < deadline and not self.pool.stopping:
            if self.conn.poll(0.2):
                try:
                    msg = self.conn.recv()
                except (EOFError, OSError):
                    break
                if msg and msg[0] == "ready":
                    return None
            elif proc.poll() is not None:
                break
        code = proc.poll()
        self.kill()
        if self.pool.stopping:
            return "the server is shutting down"
        return f"the analysis worker could not start (exit code {code}); see the server log"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                log.warning("analysis worker %d (pid %d) did not exit after SIGKILL", self.index, self.proc.pid)
        if self.conn is not None:
            self.conn.close()
        self.proc, self.conn = None, None

    def stop_process(self) -> None:
        if self.alive():
            try:
                self.conn.send(None)
                self.proc.wait(2)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                pass
        self.kill()

    # ------------------------------------------------------------ loop
    def run(self) -> None:
        while True:
            aid = self.pool._take()
            if aid is None:
                break
            try:
                self._analyse(aid)
            except Exception:  # noqa: BLE001 - never let one analysis stop the worker
                log.exception("analysis %s: internal error", aid)
                self.pool._fail(aid, "internal server error while analysing; see the server log")
                self.kill()
            finally:
                self.pool._release(aid)
        self.stop_process()

    def _analyse(self, aid: str) -> None:
        pool, s, store = self.pool, self.pool.settings, self.pool.store
        row = store.get_analysis(aid)
        if row is None or row["status"] not in ("queued", "running"):
            return
        src = s.uploads_dir / row["content_hash"]
        entry = pool.catalog.get(row["options"].get("model", ""))
        if not src.is_file():
            return pool._fail(aid, "the uploaded file is missing from the server's data folder")
        if entry is None:
            return pool._fail(aid, f"model {row['options'].get('model')!r} is not offered by this server any more")
        store.update_analysis(aid, status="running", progress=0.0, error=None)
        if not self.alive():
            self.kill()
            error = self._start_process()
            if error:
                if pool.stopping:
                    return store.update_analysis(aid, status="queued", progress=0.0)
                return pool._fail(aid, error)
        heat_dir = s.heatmaps_dir / aid
        heat_dir.mkdir(parents=True, exist_ok=True)
        self.conn.send({"spec": entry.spec, "frames": int(row["options"].get("frames") or s.frames),
                        "path": str(src), "heatmap_dir": str(heat_dir)})
        t0 = time.monotonic()
        deadline = t0 + s.timeout_s
        while True:
            now = time.monotonic()
            if pool.stopping:
                self.kill()
                store.update_analysis(aid, status="queued", progress=0.0)
                return
            if pool._is_cancelled(aid):
                self.kill()
                shutil.rmtree(heat_dir, ignore_errors=True)
                return
            if now >= deadline:
                self.kill()
                shutil.rmtree(heat_dir, ignore_errors=True)
                return pool._fail(aid, f"analysis stopped: it took longer than the {s.timeout_s:g} s time limit "
                                       "(the server's --timeout); try fewer frames or a shorter clip")
            try:
                ready = self.conn.poll(min(0.2, deadline - now))
                msg = self.conn.recv() if ready else None
            except (EOFError, OSError):
                msg, ready = None, True
            if msg is None:
                if ready or not self.alive():
                    try:
                        code = self.proc.wait(1)
                    except subprocess.TimeoutExpired:
                        code = None
                    self.kill()
                    shutil.rmtree(heat_dir, ignore_errors=True)
                    return pool._fail(aid, f"the analysis worker stopped unexpectedly (exit code {code}); "
                                           "the file may be damaged or too large to decode")
                continue
            if msg[0] == "progress":
                store.update_analysis(aid, progress=float(msg[1]))
            elif msg[0] == "error":
                shutil.rmtree(heat_dir, ignore_errors=True)
                return pool._fail(aid, str(msg[1]))
            elif msg[0] == "done":
                return pool._finish(aid, row, entry.name, msg[1], msg[2], heat_dir, time.monotonic() - t0)


class WorkerPool:
    def __init__(self, settings: Settings, store: ResultStore, catalog: ModelCatalog) -> None:
        self.settings = settings
        self.store = store
        self.catalog = catalog
        self._pending: deque[str] = deque()
        self._running: set[str] = set()
        self._cancelled: set[str] = set()
        self._cond = threading.Condition()
        self.stopping = False
        self.started = False
        self._lock_file = None
        self._workers = [_Worker(self, i) for i in range(settings.workers)]

    # ------------------------------------------------------------ queue
    def submit(self, analysis_id: str, *, force: bool = False) -> None:
        """Queue an analysis; :class:`QueueFull` when ``queue_size`` analyses already wait."""
        with self._cond:
            if not force and len(self._pending) >= self.settings.queue_size:
                raise QueueFull()
            self._pending.append(analysis_id)
            self._cond.notify()

    def is_full(self) -> bool:
        with self._cond:
            return len(self._pending) >= self.settings.queue_size

    def position(self, analysis_id: str) -> int | None:
        """0-based place in the waiting line, None when not waiting."""
        with self._cond:
            try:
                return self._pending.index(analysis_id)
            except ValueError:
                return None

    def counts(self) -> dict[str, int]:
        with self._cond:
            return {"queued": len(self._pending), "running": len(self._running)}

    def cancel(self, analysis_id: str) -> None:
        """Forget a waiting analysis or stop a running one (its worker process is killed)."""
        with self._cond:
            try:
                self._pending.remove(analysis_id)
            except ValueError:
                pass
            if analysis_id in self._running:
                self._cancelled.add(analysis_id)

    def _take(self) -> str | None:
        with self._cond:
            while not self._pending and not self.stopping:
                self._cond.wait(1.0)
            if self.stopping:
                return None
            aid = self._pending.popleft()
            self._running.add(aid)
            return aid

    def _release(self, aid: str) -> None:
        with self._cond:
            self._running.discard(aid)
            self._cancelled.discard(aid)

    def _is_cancelled(self, aid: str) -> bool:
        with self._cond:
            return aid in self._cancelled

    # ------------------------------------------------------------ results
    def _fail(self, aid: str, message: str, result: dict[str, Any] | None = None) -> None:
        log.info("analysis %s failed: %s", aid, message)
        values: dict[str, Any] = {"status": "failed", "error": message}
        if result is not None:
            values["result"] = result
        self.store.update_analysis(aid, **values)

    def _finish(self, aid: str, row: dict, model_name: str, result: dict[str, Any], model_version: str,
                heat_dir: Path, seconds: float) -> None:
        for face in result.get("faces", []):
            written = face.get("heatmap")
            face["heatmap"] = None
            if written:
                src = Path(written)
                dst = heatmap_file(self.settings, aid, face["track_id"])
                if src.resolve().parent == heat_dir.resolve() and src.is_file():
                    src.replace(dst)
                    face["heatmap"] = heatmap_url(aid, face["track_id"])
        result["path"] = row["filename"] or "upload"   # never the server's file path
        result["model"] = model_name
        options = dict(row["options"], model_version=model_version)
        if result.get("verdict") == "error":
            self.store.update_analysis(aid, status="failed", progress=1.0, error=result.get("error") or "error",
                                       result=result, options_json=json.dumps(options))
        else:
            self.store.update_analysis(aid, status="done", progress=1.0, error=None, result=result,
                                       options_json=json.dumps(options))
        log.info("analysis %s: %s in %.1f s", aid, result.get("verdict"), seconds)
        if self.store.get_analysis(aid) is None:  # deleted while it ran
            shutil.rmtree(heat_dir, ignore_errors=True)

    # ------------------------------------------------------------ lifecycle
    def recover(self) -> int:
        """Re-queue analyses a previous server process left queued or running; returns how many."""
        q = (select(analyses.c.id, analyses.c.content_hash).where(analyses.c.status.in_(("queued", "running")))
             .order_by(analyses.c.created_at))
        with self.store.engine.connect() as c:
            rows = list(c.execute(q))
        n = 0
        for aid, content_hash in rows:
            if content_hash and (self.settings.uploads_dir / content_hash).is_file():
                self.store.update_analysis(aid, status="queued", progress=0.0)
                self.submit(aid, force=True)
                n += 1
            else:
                self._fail(aid, "the uploaded file is missing from the server's data folder (lost in a restart)")
        if n:
            log.info("re-queued %d analyses left unfinished by the previous server process", n)
        return n

    def _lock_data_dir(self) -> None:
        """One serving process per data folder: recovery would otherwise re-run another server's work."""
        try:
            import fcntl
        except ImportError:  # not POSIX: no lock
            return
        self._lock_file = open(self.settings.data_dir / "server.lock", "a+")
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            self._lock_file = None
            from fak3zer0.errors import ConfigError

            raise ConfigError(f"another fak3zer0 server is using the data folder {self.settings.data_dir}; "
                              "stop it or give this one its own --data-dir") from None

    def start(self) -> None:
        if self.started:
            return
        self._lock_data_dir()
        self.started = True
        self.recover()
        for w in self._workers:
            w.thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        with self._cond:
            self.stopping = True
            self._cond.notify_all()
        for w in self._workers:
            if w.thread.is_alive():
                w.thread.join(timeout)
            w.stop_process()
        if self._lock_file is not None:
            self._lock_file.close()  # releases the lock
            self._lock_file = None
