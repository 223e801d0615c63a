"""Media stage: find inputs, sniff their type, decode, sample frames spread over the clip."""
from fak3zer0.media.decode import Frame, MediaInfo, probe_media, sample_frames  # noqa: F401
from fak3zer0.media.discover import InputItem, discover_inputs  # noqa: F401
