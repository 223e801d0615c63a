"""Faces stage: detect, track, crop, landmarks."""
from fak3zer0.faces.crop import crop_face, crop_transform, transform_points  # noqa: F401
from fak3zer0.faces.detector import LANDMARK_NAMES, FaceBox, build_face_detector  # noqa: F401
from fak3zer0.faces.extract import FaceExtraction, extract_faces, track_crops  # noqa: F401
from fak3zer0.faces.track import FaceTrack, select_tracks, track_faces  # noqa: F401
