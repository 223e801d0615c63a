"""Body of one analysis worker process (started by :mod:`fak3zer0.server.pool`).

Started as ``python -m fak3zer0.server.worker FD CONFIG_JSON`` (a fresh interpreter, so nothing
depends on how the server itself was started); FD is one end of a socket pair wrapped in a
``multiprocessing.connection.Connection``. Protocol:

* worker -> server: ``("ready",)`` once imports and the default model are loaded, then per job
  ``("progress", fraction)`` ..., and finally ``("done", result_dict, model_version)`` or
  ``("error", message)``.
* server -> worker: a job dict, or ``None`` to exit.

The worker runs in its own process so that a time limit can really stop it (the server kills
it) and so that a decoder crash on a hostile file cannot take the server down.
"""
from __future__ import annotations

import copy
import signal
from typing import Any


def child_main(conn, config: dict[str, Any]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C goes to the server, which stops us
    import torch

    torch.set_num_threads(max(1, int(config.get("threads", 1))))
    from fak3zer0.api.detector import Detector
    from fak3zer0.errors import Fak3Zer0Error

    detectors: dict[str, Detector] = {}

    def detector_for(spec: str, frames: int) -> Detector:
        if spec not in detectors:
            detectors[spec] = Detector(spec, frames=frames, threshold=config.get("threshold"),
                                       device=config.get("device", "cpu"),
                                       face_detector=config.get("face_detector", "mtcnn"))
        det = copy.copy(detectors[spec])  # shares the loaded networks; only the frame count differs
        det.frames = frames
        return det

    try:
        detector_for(config["preload"], 1)
    except Exception:  # noqa: BLE001 - reported per job, with the message, when a job needs it
        pass
    try:
        conn.send(("ready",))
        while True:
            job = conn.recv()
            if job is None:
                return
            last = [0.0]

            def progress(stage: str, done: int, total: int) -> None:
                p = 0.05 + 0.85 * done / max(total, 1)
                if p - last[0] >= 0.02 or done >= total:
                    last[0] = p
                    conn.send(("progress", round(p, 4)))

            try:
                det = detector_for(job["spec"], int(job["frames"]))
                verdict = det.detect(job["path"], heatmap_dir=job["heatmap_dir"], progress=progress)
                conn.send(("done", verdict.to_dict(), det.model_version))
            except Fak3Zer0Error as exc:
                conn.send(("error", str(exc)))
            except Exception as exc:  # noqa: BLE001 - reported to the client as a failed analysis
                conn.send(("error", f"unexpected failure ({type(exc).__name__}: {exc})"))
    except (EOFError, BrokenPipeError, OSError):
        return  # the server went away


def main(argv: list[str] | None = None) -> int:
    import json
    import sys
    from multiprocessing.connection import Connection

    argv = sys.argv[1:] if argv is None else argv
    conn = Connection(int(argv[0]))
    try:
        child_main(conn, json.loads(argv[1]))
    finally:
        conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
