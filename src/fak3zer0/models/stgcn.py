"""ST-GCN (Yan et al., "Spatial Temporal Graph Convolutional Networks for Skeleton-Based Action
Recognition", AAAI 2018) applied to facial landmark tracks.

Nodes are landmarks, edges a face graph; every block is a spatial graph convolution
``sum_k A_k X W_k`` (normalised adjacency, one weight per partition ``k``, a learnable
edge-importance mask per block as in the paper) followed by a temporal convolution over
the same node in neighbouring frames, with batch norm, ReLU and a residual connection.

Face graphs (:func:`face_graph`):

* 5 points (MTCNN order: left eye, right eye, nose, mouth left, mouth right; "left" =
  image left): eyes-nose-mouth triangle mesh, hand-written below;
* 68 points (iBUG/dlib layout): the contour chains (jaw, brows, nose, closed eye and lip loops);
* anything else, e.g. the 478-point MediaPipe mesh: MediaPipe's tessellation cannot be
  derived without its asset files, so we build a symmetric k-nearest-neighbour graph from a
  mean face shape that the caller provides (``mean_shape``, e.g. the average of normalised
  training landmarks).  The adjacency is a buffer, so it travels inside checkpoints.

Input kind ``landmarks``: ``(B, T, P, 2)`` tracks, normalised by :func:`normalise_landmarks`
(centred, rotated so the eye line is horizontal, unit RMS size) -- by the model itself
unless it is built with ``normalise=False``.  ``stgcn_2s`` adds a second
stream on landmark velocities (frame differences) and fuses the two streams' features.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from fak3zer0.errors import ModelError
from fak3zer0.models.registry import InputSpec, register_model

LANDMARK_SPEC = InputSpec(kind="landmarks", size=0, frames=32, landmarks=5)

MTCNN5_EDGES = (
    (0, 1), (0, 2), (1, 2),  # eyes and nose
    (2, 3), (2, 4), (3, 4),  # nose and mouth corners
    (0, 3), (1, 4),  # eye to mouth corner on each side
)


def _chain(points: Sequence[int], closed: bool = False) -> list[tuple[int, int]]:
    edges = list(zip(points[:-1], points[1:]))
    return edges + [(points[-1], points[0])] if closed else edges


IBUG68_EDGES = tuple(
    _chain(range(0, 17))  # jaw
    + _chain(range(17, 22)) + _chain(range(22, 27))  # brows
    + _chain(range(27, 31)) + _chain(range(31, 36)) + [(30, 33)]  # nose bridge, nostrils
    + _chain(range(36, 42), closed=True) + _chain(range(42, 48), closed=True)  # eyes
    + _chain(range(48, 60), closed=True) + _chain(range(60, 68), closed=True)  # outer, inner lips
)

#: Landmarks whose mean is the (image-)left / right eye, per layout size.
EYE_POINTS: dict[int, tuple[list[int], list[int]]] = {
    5: ([0], [1]),
    68: (list(range(36, 42)), list(range(42, 48))),
    468: ([33, 133], [362, 263]),  # MediaPipe eye corners
    478: ([33, 133], [362, 263]),
}


# ---------------------------------------------------------------- landmark normalisation

def normalise_landmarks(points, eyes: tuple[Sequence[int], Sequence[int]] | None = None, eps: float = 1e-6):
    """Remove position, scale and in-plane rotation from landmarks ``(..., P, 2)``.

    Per set of ``P`` points (i.e. per frame): subtract the centroid, rotate so the line from
    the left-eye to the right-eye centre points along +x, divide by the RMS distance to the
    centroid.  ``eyes`` gives the index lists of both eyes (default: :data:`EYE_POINTS`).
    Returns the same type as given (numpy array or tensor).
    """
    is_numpy = not isinstance(points, torch.Tensor)
    pts = torch.as_tensor(np.asarray(points) if is_numpy else points, dtype=torch.float32)
    if pts.shape[-1] != 2:
        raise ModelError(f"landmarks must end in (P, 2), got shape {tuple(pts.shape)}")
    p = int(pts.shape[-2])
    if eyes is None:
        if p not in EYE_POINTS:
            raise ModelError(f"no default eye points for a {p}-point layout; pass eyes=(left_ids, right_ids)")
        eyes = EYE_POINTS[p]
    centred = pts - pts.mean(-2, keepdim=True)
    left, right = centred[..., list(eyes[0]), :].mean(-2), centred[..., list(eyes[1]), :].mean(-2)
    angle = torch.atan2(right[..., 1] - left[..., 1], right[..., 0] - left[..., 0])
    cos, sin = torch.cos(angle)[..., None], torch.sin(angle)[..., None]
    x, y = centred[..., 0], centred[..., 1]
    rotated = torch.stack([cos * x + sin * y, -sin * x + cos * y], dim=-1)  # rotate by -angle
    scale = rotated.pow(2).sum(-1).mean(-1).sqrt().clamp_min(eps)
    out = rotated / scale[..., None, None]
    return out.numpy() if is_numpy else out


# ---------------------------------------------------------------- graphs

def knn_edges(mean_shape, k: int = 6) -> list[tuple[int, int]]:
    """Edges from every point to its ``k`` nearest neighbours in ``mean_shape`` ``(P, 2)``."""
    shape = np.asarray(mean_shape, dtype=np.float64)
    dist = np.linalg.norm(shape[:, None] - shape[None], axis=-1)
    np.fill_diagonal(dist, np.inf)
    nearest = np.argsort(dist, axis=1)[:, :k]
    return [(i, int(j)) for i in range(len(shape)) for j in nearest[i]]


def adjacency_matrix(num_nodes: int, edges) -> np.ndarray:
    """Symmetric 0/1 adjacency without self loops."""
    a = np.zeros((num_nodes, num_nodes), dtype=np.float32)
    for i, j in edges:
        if i != j:
            a[i, j] = a[j, i] = 1.0
    return a


def normalised_adjacency(a: np.ndarray) -> np.ndarray:
    """``D^-1/2 (A + I) D^-1/2``: symmetric, eigenvalues in (-1, 1], largest exactly 1."""
    a_hat = a + np.eye(len(a), dtype=a.dtype)
    d = 1.0 / np.sqrt(a_hat.sum(1))
    return (a_hat * d[:, None] * d[None, :]).astype(np.float32)


def face_graph(num_points: int = 5, mean_shape=None, k: int = 6, partition: str = "distance") -> np.ndarray:
    """Partitioned normalised adjacency ``(K, P, P)``.

    ``partition="uniform"``: K=1, the whole normalised ``A + I``.
    ``partition="distance"``: K=2, its diagonal (the node itself) and its off-diagonal
    (the neighbours), the paper's distance partitioning; the parts sum to the uniform graph.
    """
    if mean_shape is not None:
        edges = knn_edges(mean_shape, k)
        if len(np.asarray(mean_shape)) != num_points:
            raise ModelError(f"mean_shape has {len(np.asarray(mean_shape))} points, expected {num_points}")
    elif num_points == 5:
        edges = MTCNN5_EDGES
    elif num_points == 68:
        edges = IBUG68_EDGES
    else:
        raise ModelError(f"no built-in face graph for {num_points} landmarks; pass mean_shape (P, 2) for a kNN graph")
    a = normalised_adjacency(adjacency_matrix(num_points, edges))
    if partition == "uniform":
        return a[None]
    if partition == "distance":
        diag = np.diag(np.diag(a))
        return np.stack([diag, a - diag])
    raise ModelError(f"partition must be 'uniform' or 'distance', not {partition!r}")


# ---------------------------------------------------------------- network

class GraphConv(nn.Module):
    """``sum_k (A_k * M_k) X W_k`` on ``(N, C, T, V)`` maps; ``M`` is the learnable edge importance."""

    def __init__(self, cin: int, cout: int, partitions: int, nodes: int) -> None:
        super().__init__()
        self.partitions = partitions
        self.conv = nn.Conv2d(cin, cout * partitions, 1)
        self.edge_importance = nn.Parameter(torch.ones(partitions, nodes, nodes))

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        n, _, t, v = x.shape
        y = self.conv(x).view(n, self.partitions, -1, t, v)
        return torch.einsum("nkctv,kvw->nctw", y, a * self.edge_importance)


class STGCNBlock(nn.Module):
    """Graph conv -> BN -> ReLU -> temporal conv (kt x 1, stride s) -> BN -> dropout, + residual, ReLU."""

    def __init__(self, cin: int, cout: int, partitions: int, nodes: int, kt: int = 9, stride: int = 1,
                 dropout: float = 0.0, residual: bool = True) -> None:
        super().__init__()
        self.gcn = GraphConv(cin, cout, partitions, nodes)
        self.bn1 = nn.BatchNorm2d(cout)
        self.tcn = nn.Conv2d(cout, cout, (kt, 1), stride=(stride, 1), padding=(kt // 2, 0))
        self.bn2 = nn.BatchNorm2d(cout)
        self.drop = nn.Dropout(dropout)
        self.relu = nn.ReLU()
        if not residual:
            self.residual = None
        elif cin == cout and stride == 1:
            self.residual = nn.Identity()
        else:
            self.residual = nn.Sequential(nn.Conv2d(cin, cout, 1, stride=(stride, 1)), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.gcn(x, a)))
        y = self.drop(self.bn2(self.tcn(y)))
        if self.residual is not None:
            y = y + self.residual(x)
        return self.relu(y)


class STGCNStream(nn.Module):
    """Input batch norm over (coordinate, node) channels, then a stack of ST-GCN blocks."""

    def __init__(self, nodes: int, partitions: int, channels: Sequence[int], strides: Sequence[int],
                 kt: int, dropout: float, in_channels: int = 2) -> None:
        super().__init__()
        self.data_bn = nn.BatchNorm1d(in_channels * nodes)
        blocks, cin = [], in_channels
        for i, (cout, s) in enumerate(zip(channels, strides)):
            blocks.append(STGCNBlock(cin, cout, partitions, nodes, kt, s, dropout, residual=i > 0))
            cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.num_features = cin

    def forward(self, x: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        """``(B, T, V, C)`` -> ``(B, C', T', V)``."""
        b, t, v, c = x.shape
        x = self.data_bn(x.permute(0, 2, 3, 1).reshape(b, v * c, t))  # BN per (node, coordinate)
        x = x.view(b, v, c, t).permute(0, 2, 3, 1)  # (B, C, T, V)
        for block in self.blocks:
            x = block(x, a)
        return x


def landmark_velocity(tracks: torch.Tensor) -> torch.Tensor:
    """Frame-to-frame displacement ``x_t - x_{t-1}`` (zero for the first frame), same shape."""
    return torch.cat([torch.zeros_like(tracks[:, :1]), tracks[:, 1:] - tracks[:, :-1]], dim=1)


class STGCN(nn.Module):
    """One or two ST-GCN streams (``"position"``, ``"velocity"``), features concatenated, one logit.

    With ``normalise=True`` (default) the model applies :func:`normalise_landmarks` itself, so
    raw landmark coordinates (pixels or crop units) and pre-normalised tracks give the same result.
    """

    def __init__(
        self,
        landmarks: int = 5,
        streams: Sequence[str] = ("position",),
        channels: Sequence[int] = (32, 32, 64, 64),
        strides: Sequence[int] | None = None,
        temporal_kernel: int = 9,
        partition: str = "distance",
        mean_shape=None,
        knn: int = 6,
        dropout: float = 0.0,
        normalise: bool = True,
        eyes: tuple[Sequence[int], Sequence[int]] | None = None,
    ) -> None:
        super().__init__()
        if normalise and eyes is None and landmarks not in EYE_POINTS:
            raise ModelError(f"normalise=True needs eyes=(left_ids, right_ids) for a {landmarks}-point layout")
        self.normalise = normalise
        self.eyes = eyes or EYE_POINTS.get(landmarks)
        if not streams or any(s not in ("position", "velocity") for s in streams):
            raise ModelError(f"streams must be a non-empty subset of ('position', 'velocity'), not {streams}")
        graph = torch.tensor(face_graph(landmarks, mean_shape, knn, partition))
        self.register_buffer("adjacency", graph)  # persistent: a kNN graph is restored from checkpoints
        strides = strides or [2 if i == len(channels) // 2 else 1 for i in range(len(channels))]
        self.stream_names = tuple(streams)
        self.streams = nn.ModuleList(
            STGCNStream(landmarks, graph.shape[0], channels, strides, temporal_kernel, dropout) for _ in streams
        )
        self.num_features = sum(s.num_features for s in self.streams)
        self.fc = nn.Linear(self.num_features, 1)

    def embed(self, tracks: torch.Tensor) -> torch.Tensor:
        """``(B, T, P, 2)`` -> ``(B, D)`` pooled over time and landmarks, streams concatenated."""
        if self.normalise:  # idempotent, so already-normalised tracks pass unchanged
            tracks = normalise_landmarks(tracks, self.eyes)
        feats = []
        for name, stream in zip(self.stream_names, self.streams):
            x = tracks if name == "position" else landmark_velocity(tracks)
            feats.append(stream(x, self.adjacency).flatten(2).mean(-1))
        return torch.cat(feats, dim=1)

    def forward(self, tracks: torch.Tensor) -> torch.Tensor:
        return self.fc(self.embed(tracks)).squeeze(1)

    def cam_layer(self) -> nn.Module:
        return self.streams[0].blocks[-1].bn2


def _builder(streams: tuple[str, ...]):
    """The registry builder of an ST-GCN over ``streams`` (its keyword arguments are the config options)."""

    def build(
        landmarks: int = 5,
        channels: tuple[int, ...] = (32, 32, 64, 64),
        strides: tuple[int, ...] | None = None,
        temporal_kernel: int = 9,
        partition: str = "distance",
        mean_shape: list | None = None,
        knn: int = 6,
        dropout: float = 0.0,
        normalise: bool = True,
        eyes: tuple[list[int], list[int]] | None = None,
        frames: int = LANDMARK_SPEC.frames,
    ) -> STGCN:
        model = STGCN(landmarks, streams, channels=channels, strides=strides, temporal_kernel=temporal_kernel,
                      partition=partition, mean_shape=mean_shape, knn=knn, dropout=dropout, normalise=normalise,
                      eyes=eyes)
        model.input_spec = InputSpec(kind="landmarks", size=0, frames=frames, landmarks=landmarks)
        return model

    return build


stgcn = register_model("stgcn", input_spec=LANDMARK_SPEC, family="stgcn",
                       description="ST-GCN over facial landmarks (Yan et al. 2018)")(_builder(("position",)))
stgcn_2s = register_model("stgcn_2s", input_spec=LANDMARK_SPEC, family="stgcn",
                          description="Two-stream ST-GCN: landmark positions + velocities, features fused")(
    _builder(("position", "velocity")))
