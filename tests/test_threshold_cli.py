"""`fak3zer0 threshold`: a threshold from genuine footage only, used back with `detect --threshold`."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fak3zer0.cli import main as cli_main


@pytest.fixture(scope="module")
def reals(astronaut, tmp_path_factory) -> Path:
    """Five 'genuine' photos (the astronaut, brightened/darkened/noisy/flipped) that score differently."""
    from PIL import Image

    out = tmp_path_factory.mktemp("reals")
    rng = np.random.default_rng(0)
    img = astronaut.astype(np.float32)
    variants = [img, img * 0.7, np.minimum(img * 1.3, 255), img + rng.normal(0, 12, img.shape), img[:, ::-1]]
    for i, v in enumerate(variants):
        Image.fromarray(np.clip(v, 0, 255).astype(np.uint8)).save(out / f"real_{i}.png")
    return out


def _json(capsys) -> dict:
    return json.loads(capsys.readouterr().out)


def _threshold(checkpoint: Path, false_alarm: float, *paths) -> int:
    return cli_main(["threshold", "--model", str(checkpoint), "--frames", "2", "--no-progress",
                     "--false-alarm", str(false_alarm), *map(str, paths)])


def test_threshold_from_reals_flags_none_of_them_at_the_smallest_count(reals, media_dir, tiny_checkpoint, capsys):
    model = ["--model", str(tiny_checkpoint), "--frames", "2", "--no-progress"]
    rc = cli_main(["threshold", *model, "--false-alarm", "0.2", "--json", str(reals), str(media_dir / "no_face.png")])
    assert rc == 0
    s = _json(capsys)
    scores = [x["fake_probability"] for x in s["scores"]]
    assert s["reals_scored"] == 5 and s["no_face"] == 1 and s["errors"] == 0
    # k = 5 at 0.2: rank ceil(6 * 0.8) = 5, the largest score; printed rounded up, so no given real is flagged
    assert max(scores) < s["threshold"] <= max(scores) + 1e-4
    assert s["reals_at_model_threshold"] == sum(p >= 0.5 for p in scores)

    assert s["fakes_scored"] == 0 and {x["label"] for x in s["scores"]} == {"real"}

    rc = cli_main(["detect", *model, "--threshold", str(s["threshold"]), "--json", str(reals)])
    assert rc == 0
    assert {v["verdict"] for v in _json(capsys)} == {"real"}


def test_threshold_refuses_too_few_reals_and_says_how_many(reals, tiny_checkpoint, capsys):
    rc = _threshold(tiny_checkpoint, 0.1, reals)
    err = capsys.readouterr().err
    assert rc == 1
    assert "needs at least 9" in err and "5 of 5" in err


def test_threshold_readable_summary(reals, tiny_checkpoint, capsys):
    rc = _threshold(tiny_checkpoint, 0.25, reals)
    out = capsys.readouterr().out
    assert rc == 0
    assert "reals scored" in out and "5" in out
    line = next(x for x in out.splitlines() if x.startswith("use it:"))
    assert float(line.split("--threshold")[1].split()[0]) > 0


def test_threshold_reports_what_it_costs_on_known_fakes(reals, media_dir, tiny_checkpoint, capsys):
    """--fakes: the known fakes are scored too; caught = those at or above the new threshold (not used to set it)."""
    fakes = [str(media_dir / "astronaut_pan.mp4"), str(media_dir / "astronaut_rotated.mp4")]
    args = ["threshold", "--model", str(tiny_checkpoint), "--frames", "2", "--no-progress", "--false-alarm", "0.2",
            str(reals)]
    assert cli_main([*args, "--json"]) == 0
    alone = _json(capsys)
    assert cli_main([*args, "--json", "--fakes", fakes[0], "--fakes", fakes[1]]) == 0
    s = _json(capsys)
    assert s["threshold"] == alone["threshold"]
    fake_p = [x["fake_probability"] for x in s["scores"] if x["label"] == "fake"]
    assert s["fakes_scored"] == len(fake_p) == 2
    assert s["fakes_caught"] == sum(p >= s["threshold"] for p in fake_p)
    assert s["fakes_at_model_threshold"] == sum(p >= 0.5 for p in fake_p)
    assert cli_main(["threshold", "--fakes", str(media_dir / "*.mp4"), *args[1:]]) == 0
    assert "known fakes caught at the new threshold" in capsys.readouterr().out
