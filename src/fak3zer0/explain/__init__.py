"""Explanations: which pixels drove a face's fake score."""
from fak3zer0.explain.gradcam import face_heatmap, save_heatmap_png  # noqa: F401
