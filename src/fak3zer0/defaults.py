"""The one place for default settings shared by the CLI, the API, the server and the scanner."""
from __future__ import annotations

DEFAULT_MODEL = "fak3zer0-default"
DEFAULT_FRAMES = 32
DEFAULT_THRESHOLD = 0.5
#: Share of genuine footage `fak3zer0 threshold` allows to be called fake.
DEFAULT_FALSE_ALARM = 0.10
DEFAULT_DEVICE = "auto"
DEFAULT_FACE_DETECTOR = "mtcnn"
#: Largest side the face detector sees; faces are cropped from the full-resolution frame.
DETECT_MAX_SIDE = 640
#: A frame where nothing is found at DETECT_MAX_SIDE is searched again at this size (small faces:
#: docs/face-detectors.md measured 33% recall of 40 px faces in 1080p at 640, 100% at 960).
DETECT_RETRY_MAX_SIDE = 960
#: Run the face detector on every Nth sampled frame and interpolate between (1 = every frame).
DETECT_EVERY = 4
#: Of those detections, every Nth searches the whole frame; on the others the known faces are found
#: again from their last box (falling back to the whole frame when one is lost).
FULL_DETECT_EVERY = 3
#: Face crops per model call. On a CPU small batches stay in cache: EfficientNet-Lite0 at 160 px
#: measured ~11 ms/crop at 4-8 per batch, channels-last, vs ~35 ms/crop at 64 in the default
#: layout (1 thread, 2-core x86; python bench/model_speed.py).
CPU_BATCH_SIZE = 8
GPU_BATCH_SIZE = 64
#: Smallest face (pixels, in the detector's downscaled frame) MTCNN looks for.
MIN_FACE_SIZE = 24
#: Crop = face box enlarged by this factor around its centre (square).
CROP_MARGIN = 1.3
#: At most this many face tracks are scored per input (largest / most consistent first).
MAX_TRACKS = 4
#: Refuse images/videos with more pixels per frame than this (decompression bombs).
MAX_PIXELS = 8192 * 8192
#: Refuse files larger than this many bytes (0 = no limit).
MAX_FILE_BYTES = 0

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".3gp", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS + IMAGE_EXTENSIONS
