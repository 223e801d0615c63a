"""Faces stage: MTCNN and Haar on a real photo, landmarks, tracking, crops."""
from __future__ import annotations

import numpy as np
import pytest

from fak3zer0.faces import build_face_detector, crop_face, extract_faces, track_faces, transform_points
from fak3zer0.faces.boxes import iou_matrix, nms, square_boxes
from fak3zer0.faces.detector import FaceBox
from fak3zer0.faces.track import select_tracks
from fak3zer0.media import sample_frames

# Eileen Collins' face in scikit-image's astronaut() photo (512 x 512), measured by hand.
ASTRONAUT_FACE = np.array([175, 55, 270, 180])


@pytest.mark.parametrize("name", ["mtcnn", "haar"])
def test_detectors_find_the_astronaut(name, astronaut):
    faces = build_face_detector(name).detect(astronaut)
    assert len(faces) >= 1
    best = max(faces, key=lambda f: f.score)
    assert iou_matrix(best.box[None], ASTRONAUT_FACE[None])[0, 0] > 0.5
    assert best.landmarks.shape == (5, 2)


def test_mtcnn_landmarks_are_anatomical(astronaut):
    face = build_face_detector("mtcnn").detect(astronaut)[0]
    le, re, nose, ml, mr = face.landmarks
    assert face.landmarks_estimated is False
    assert le[0] < re[0] and ml[0] < mr[0], "left/right order in the image"
    assert max(le[1], re[1]) < nose[1] < min(ml[1], mr[1]), "eyes above nose above mouth"
    x1, y1, x2, y2 = face.box
    assert np.all((face.landmarks[:, 0] > x1) & (face.landmarks[:, 0] < x2))
    assert np.all((face.landmarks[:, 1] > y1) & (face.landmarks[:, 1] < y2))


def test_mtcnn_finds_a_small_face_in_a_large_frame(astronaut):
    """A ~90 px face in a 1920x1080 frame (the case MediaPipe misses)."""
    import cv2

    frame = np.full((1080, 1920, 3), 90, np.uint8)
    small = cv2.resize(astronaut, (360, 360), interpolation=cv2.INTER_AREA)  # face ~ 70-90 px
    frame[500:860, 1300:1660] = small
    faces = build_face_detector("mtcnn").detect(frame)
    assert faces, "MTCNN should find the small face"
    cx = (faces[0].box[0] + faces[0].box[2]) / 2
    assert 1300 < cx < 1660


def test_no_face_in_coffee():
    from skimage import data

    assert build_face_detector("mtcnn").detect(data.coffee()) == []


def test_nms_and_square():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 70]], float)
    keep = nms(boxes, np.array([0.9, 0.8, 0.7]), 0.5)
    assert list(keep) == [0, 2]
    sq = square_boxes(boxes[2:])
    assert sq[0, 2] - sq[0, 0] == pytest.approx(sq[0, 3] - sq[0, 1]) == pytest.approx(20)


def _greedy_nms(boxes, scores, threshold):
    """Textbook greedy NMS (IoU), the reference for the OpenCV-backed ``nms``."""
    order, keep = list(np.argsort(-scores, kind="stable")), []
    while order:
        i = order.pop(0)
        keep.append(i)
        order = [j for j in order if iou_matrix(boxes[i][None], boxes[j][None])[0, 0] <= threshold]
    return keep


def test_nms_matches_greedy_reference_on_random_boxes():
    rng = np.random.default_rng(0)
    for n in (1, 7, 60):
        xy = rng.random((n, 2)) * 100
        boxes = np.hstack([xy, xy + rng.random((n, 2)) * 40 + 2])
        scores = rng.random(n)
        for t in (0.3, 0.5, 0.7):
            assert list(nms(boxes, scores, t)) == _greedy_nms(boxes, scores, t)


def test_mtcnn_pyramid_halves_exactly_every_second_level():
    from fak3zer0.faces.mtcnn import MTCNN

    net = build_face_detector("mtcnn").net
    assert isinstance(net, MTCNN)
    frame = np.zeros((481, 641, 3), np.uint8)  # odd sides: levels are cropped to even before halving
    levels = [im for im, _, _ in net._pyramid(frame)]
    assert levels[0].shape[:2] == (240, 320)  # 12 / min_face_size (24) = 0.5
    assert min(levels[-1].shape[:2]) >= 12 and len(levels) >= 6
    for a, b in zip(levels, levels[2:]):
        assert b.shape[:2] == (a.shape[0] // 2, a.shape[1] // 2)


def _fb(x, y, s=40):
    return FaceBox(np.array([x, y, x + s, y + s], float), 0.99)


def test_tracking_links_moving_faces_and_drops_flicker():
    frames = [[_fb(10 + 5 * i, 10), _fb(200, 100 + 3 * i)] for i in range(10)]
    frames[4].append(_fb(400, 400, 20))  # a one-frame false positive
    tracks = select_tracks(track_faces(frames), n_frames=10, max_tracks=4)
    assert len(tracks) == 2
    assert all(len(t) == 10 for t in tracks)
    xs = [fb.box[0] for _, fb in tracks[0].items]
    assert xs == sorted(xs) or xs == sorted(xs, reverse=True)


def test_crop_face_margin_and_landmark_mapping(astronaut):
    face = build_face_detector("mtcnn").detect(astronaut)[0]
    crop, m = crop_face(astronaut, face.box, 128)
    assert crop.shape == (128, 128, 3) and crop.dtype == np.uint8
    pts = transform_points(face.landmarks, m)
    assert np.all((pts > 0) & (pts < 128))
    # With margin 1.3 the face box occupies ~1/1.3 of the crop.
    bx = transform_points(face.box.reshape(2, 2), m)
    assert (bx[1, 0] - bx[0, 0]) / 128 == pytest.approx(1 / 1.3, abs=0.2)


def test_crop_near_the_border_is_padded(astronaut):
    crop, _ = crop_face(astronaut, np.array([-20, -20, 60, 60]), 64)
    assert crop.shape == (64, 64, 3)


def test_extract_faces_on_a_clip(media_dir):
    det = build_face_detector("mtcnn")
    ex = extract_faces(sample_frames(media_dir / "astronaut_pan.mp4", 6), det, 96)
    assert len(ex.frames) == 6
    assert len(ex.tracks) == 1 and len(ex.tracks[0]) >= 5
    assert ex.tracks[0].items[0][1].crop.shape == (96, 96, 3)


class ScriptedDetector:
    """A face detector that answers from a script (frame index -> boxes) and records its calls."""

    def __init__(self, script):
        self.script, self.calls = script, []

    def detect(self, image):
        from fak3zer0.faces.detector import FaceBox

        idx = int(image[0, 0, 0])  # the test frames carry their index in the first pixel
        self.calls.append(idx)
        return [FaceBox(np.array(b, float), 0.99, np.tile(np.array(b[:2], float), (5, 1)))
                for b in self.script(idx)]


def _numbered_frames(n):
    from fak3zer0.media.decode import Frame

    for i in range(n):
        img = np.zeros((120, 160, 3), np.uint8)
        img[0, 0, 0] = i
        yield Frame(i, i / 25, img)


def test_extract_faces_interpolates_between_matching_detections():
    det = ScriptedDetector(lambda i: [[10 + 2 * i, 20, 60 + 2 * i, 70]])
    ex = extract_faces(_numbered_frames(9), det, 32, detect_every=4)
    assert det.calls == [0, 4, 8]  # the detector never saw frames 1-3 and 5-7
    (track,) = ex.tracks
    assert len(track) == 9
    for pos, fb in track.items:  # linear motion: the interpolation is exact
        np.testing.assert_allclose(fb.box, [10 + 2 * pos, 20, 60 + 2 * pos, 70])
        assert fb.interpolated == (pos % 4 != 0)
        assert fb.crop.shape == (32, 32, 3)


def test_extract_faces_skips_frames_between_two_empty_detections():
    det = ScriptedDetector(lambda i: [])
    ex = extract_faces(_numbered_frames(7), det, 32, detect_every=4)
    assert det.calls == [0, 4, 6]  # the last frame is always looked at
    assert ex.tracks == [] and len(ex.frames) == 7


def test_extract_faces_detects_every_frame_when_faces_change():
    det = ScriptedDetector(lambda i: [[10, 10, 50, 50]] if i < 2 else [[10, 10, 50, 50], [90, 10, 130, 50]])
    ex = extract_faces(_numbered_frames(5), det, 32, detect_every=4)
    assert sorted(det.calls) == [0, 1, 2, 3, 4]  # a face appeared: nothing is interpolated
    assert sorted(len(t) for t in ex.tracks) == [3, 5]


def test_mtcnn_redetects_a_moved_face_near_its_last_box(astronaut):
    """detect_near finds the face again in a shifted frame, and gives up where there is none."""
    det = build_face_detector("mtcnn")
    (first,) = [f for f in det.detect(astronaut) if f.score > 0.9]
    canvas = np.full((700, 900, 3), 90, np.uint8)
    canvas[20:532, 30:542] = astronaut  # the whole photo moved by (30, 20): about a third of the face
    again = det.detect_near(canvas, [first])
    assert again is not None and len(again) == 1
    moved = first.box + [30, 20, 30, 20]
    assert iou_matrix(again[0].box[None], moved[None])[0, 0] > 0.8
    np.testing.assert_allclose(again[0].landmarks, first.landmarks + [30, 20], atol=0.08 * first.width)
    empty = np.full((700, 900, 3), 90, np.uint8)
    assert det.detect_near(empty, [first]) is None  # the caller then searches the whole frame


class NearScriptedDetector(ScriptedDetector):
    """ScriptedDetector that can also re-detect near known faces (answers from ``near_script``)."""

    def __init__(self, script, near_script):
        super().__init__(script)
        self.near_script, self.near_calls = near_script, []

    def detect_near(self, image, previous):
        idx = int(image[0, 0, 0])
        self.near_calls.append(idx)
        boxes = self.near_script(idx)
        return None if boxes is None else self.detect_boxes(boxes)

    def detect_boxes(self, boxes):
        from fak3zer0.faces.detector import FaceBox

        return [FaceBox(np.array(b, float), 0.99, np.tile(np.array(b[:2], float), (5, 1))) for b in boxes]


def test_extract_faces_searches_the_whole_frame_every_nth_detection():
    box = lambda i: [[10 + i, 20, 60 + i, 70]]  # noqa: E731
    det = NearScriptedDetector(box, box)
    ex = extract_faces(_numbered_frames(25), det, 32, detect_every=4, full_detect_every=3)
    # detections on frames 0, 4, ..., 24: whole frame on the 1st, 4th and 7th, near the faces otherwise
    assert det.calls == [0, 12, 24] and det.near_calls == [4, 8, 16, 20]
    assert len(ex.tracks) == 1 and len(ex.tracks[0]) == 25


def test_extract_faces_falls_back_to_the_whole_frame_when_a_face_is_lost():
    det = NearScriptedDetector(lambda i: [[10, 20, 60, 70]], lambda i: None if i == 8 else [[10, 20, 60, 70]])
    extract_faces(_numbered_frames(13), det, 32, detect_every=4, full_detect_every=3)
    assert det.near_calls == [4, 8] and det.calls == [0, 8, 12]
