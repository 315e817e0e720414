"""Frame-to-frame face tracking: IoU matching (Hungarian), re-identification and per-track smoothing.

Gives each face a stable integer id while it stays in view, so its scores can be smoothed and a
per-person adapter (or a name) can be looked up. Ids are never reused within a tracker's life.

Matching runs in two stages. First, detections continue the track whose last box they overlap
most (IoU, Hungarian). Then, if embeddings are given, the detections left over are compared with
the tracks left over *and* with recently lost tracks by the cosine similarity of the detection's
embedding and the track's mean embedding (plus a bonus for overlapping the track's last box), so a
face that leaves the frame for a while, or jumps when a video-call gallery re-flows, gets its old
id back. The embeddings come from the emotion backbone, which was not trained to tell people
apart: they separate clearly different faces (e.g. a man and a woman) but not look-alikes.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from emowidgets.boxes import iou_matrix


def linear_sum_assignment(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SciPy's Hungarian matching, imported on first use: ``scipy.optimize`` takes 0.3 s to import."""
    from scipy.optimize import linear_sum_assignment as hungarian

    return hungarian(cost)  # type: ignore[no-any-return]


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


@dataclasses.dataclass(eq=False)
class Track:
    """One tracked face.

    Attributes:
        track_id: the stable id.
        box: last box ``(4,)`` ``x, y, w, h`` in pixels.
        probs: smoothed probabilities (empty until :meth:`Tracker.smooth` sees the track).
        missed: consecutive frames without a detection.
        embedding: running mean of the unit-length embeddings ``(D,)`` (``None`` if never given).
        n_embeddings: how many embeddings the mean holds (capped, so old frames fade out).
        look: the last thumbnail of the face's video-call tile (``None`` outside a call grid).
        face: whether the pipeline's second look (``FaceDetector.check``) found a face there: ``None`` until
            it has decided; a track decided ``False`` (a phantom) is followed but never reported.
        checks: how many second looks the track has had.
    """

    track_id: int
    box: np.ndarray
    probs: np.ndarray
    missed: int = 0
    embedding: np.ndarray | None = None
    n_embeddings: int = 0
    look: np.ndarray | None = None
    face: bool | None = None
    checks: int = 0

    def add_embedding(self, embedding: np.ndarray, cap: int) -> None:
        """Fold one unit-length embedding into the running mean (a plain mean up to ``cap`` frames)."""
        if self.embedding is None or self.embedding.shape != embedding.shape:
            self.embedding, self.n_embeddings = embedding.copy(), 1
            return
        self.n_embeddings = min(self.n_embeddings + 1, cap)
        self.embedding += (embedding - self.embedding) / self.n_embeddings


class Tracker:
    """Assigns track ids to detections and smooths their probabilities.

    Args:
        smoothing: weight of the newest frame in the exponential moving average (1 = no smoothing).
        min_iou: a detection continues a track by position only if their boxes overlap at least this much.
        max_missed: frames a track stays active without a detection; then it is *lost*.
        max_lost: frames a lost track can still be re-identified (only with embeddings); then it is gone.
        min_similarity: cosine similarity (plus ``position_weight`` x IoU with the track's last box)
            a detection needs to take over a lost or unmatched track.
        position_weight: weight of the overlap with the track's last box in the re-identification score.
        embedding_window: frames in a track's mean embedding before older frames start to fade.
        look_gate: in a video-call grid, the mean grey-level difference between a tile's thumbnail and the
            track's last one above which the tile shows someone else (the call re-ordered its tiles): the
            overlap does not decide first: the face is re-identified by its look and its embedding, and only a
            face that matches no one else continues the track it overlaps (its video jumped). The same
            person differs by 0.2 (median) to 7 (99th percentile) from frame to frame on the test galleries,
            two people by 15 (median).
    """

    def __init__(self, smoothing: float = 0.4, min_iou: float = 0.2, max_missed: int = 10,
                 max_lost: int = 750, min_similarity: float = 0.6, position_weight: float = 0.2,
                 embedding_window: int = 100, look_gate: float = 10.0) -> None:
        self.smoothing = smoothing
        self.min_iou = min_iou
        self.max_missed = max_missed
        self.max_lost = max_lost
        self.min_similarity = min_similarity
        self.position_weight = position_weight
        self.embedding_window = embedding_window
        self.look_gate = look_gate
        self.tracks: list[Track] = []
        self.lost: list[Track] = []
        self._next_id = 1

    def match(self, boxes: np.ndarray, looks: np.ndarray | None = None) -> np.ndarray:
        """The ids that :meth:`assign` will give ``boxes`` ``(N, 4)`` by overlap alone, 0 where no active track
        overlaps enough (a new or re-identified face); changes nothing. The pipeline asks this first, to
        classify only the faces that need it (:mod:`emowidgets.budget`). ``looks``: as in :meth:`assign`."""
        ids = np.zeros(len(boxes), np.int64)
        for i, track in self._overlap_matches(boxes, looks).items():
            ids[i] = track.track_id
        return ids

    def _look_distance(self, looks: np.ndarray, tracks: list[Track]) -> np.ndarray:
        """Mean absolute difference ``(N, T)`` of each thumbnail and each track's last one (0 where a track has
        none)."""
        out = np.zeros((len(looks), len(tracks)), np.float32)
        for j, t in enumerate(tracks):
            if t.look is not None and t.look.shape == looks.shape[1:]:
                out[:, j] = np.abs(looks - t.look).mean(axis=1)
        return out

    def _overlap_matches(self, boxes: np.ndarray, looks: np.ndarray | None = None) -> dict[int, Track]:
        if not len(boxes) or not self.tracks:
            return {}
        iou = iou_matrix(boxes, np.stack([t.box for t in self.tracks]))
        if looks is not None:  # the tile shows someone else now: the place says nothing
            iou[self._look_distance(looks, self.tracks) > self.look_gate] = 0
        rows, cols = linear_sum_assignment(-iou)
        return {int(r): self.tracks[c] for r, c in zip(rows, cols, strict=True) if iou[r, c] >= self.min_iou}

    def assign(self, boxes: np.ndarray, embeddings: np.ndarray | None = None, fresh: np.ndarray | None = None,
               matched_ids: np.ndarray | None = None, looks: np.ndarray | None = None) -> np.ndarray:
        """Match this frame's boxes ``(N, 4)`` to tracks; return ids ``(N,)`` (new ids for new faces).

        With ``embeddings`` ``(N, D)`` the detections no box overlap explains are re-identified
        against unmatched and lost tracks; without them only the overlap counts. ``fresh`` ``(N,)`` marks
        the rows whose embeddings were computed on this frame (default: all); only those join a track's
        mean embedding, and a row that is not fresh must be one :meth:`match` explains. ``matched_ids``: what
        :meth:`match` returned for these boxes, if the caller asked, so the overlap is not matched twice.
        ``looks`` ``(N, D)``: a thumbnail of each face's video-call tile (grey levels), in a call grid; a track
        whose tile now looks different is not continued by overlap (see ``look_gate``), and the look joins the
        embedding in re-identification.
        """
        n = len(boxes)
        ids = np.zeros(n, np.int64)
        if matched_ids is None:
            assigned = self._overlap_matches(boxes, looks)
        else:
            by_id = {t.track_id: t for t in self.tracks}
            assigned = {i: by_id[int(tid)] for i, tid in enumerate(matched_ids) if tid}
        units = _unit(np.asarray(embeddings, np.float32)) if embeddings is not None and n else None
        if units is not None:
            assigned.update(self._reidentify(boxes, units, assigned, looks))
        if looks is not None:  # a tile that changed look but matches nobody else is the same person (a jump)
            taken = list(assigned.values())
            free = [t for t in self.tracks if t not in taken]
            rest = [i for i in range(n) if i not in assigned]
            if free and rest:
                iou = iou_matrix(boxes[rest], np.stack([t.box for t in free]))
                r, c = linear_sum_assignment(-iou)
                assigned.update({rest[i]: free[j] for i, j in zip(r, c, strict=True) if iou[i, j] >= self.min_iou})
        matched = list(assigned.values())  # Track compares by identity
        self.tracks += [t for t in self.lost if t in matched]
        self.lost = [t for t in self.lost if t not in matched]
        for i in range(n):
            track = assigned.get(i)
            if track is None:
                track = Track(self._next_id, boxes[i].copy(), np.zeros(0, np.float32))
                self._next_id += 1
                self.tracks.append(track)
            track.box, track.missed = boxes[i].copy(), 0
            if units is not None and (fresh is None or fresh[i]):
                track.add_embedding(units[i], self.embedding_window)
            if looks is not None:
                track.look = looks[i].copy()
            ids[i] = track.track_id
        seen = {int(t) for t in ids}
        for track in self.tracks:
            if track.track_id not in seen:
                track.missed += 1
        for track in self.lost:
            track.missed += 1
        gone = [t for t in self.tracks if t.missed > self.max_missed]
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        self.lost = [t for t in self.lost + [t for t in gone if t.embedding is not None]
                     if t.missed <= self.max_missed + self.max_lost]
        return ids

    def _reidentify(self, boxes: np.ndarray, units: np.ndarray, assigned: dict[int, Track],
                    looks: np.ndarray | None = None) -> dict[int, Track]:
        """Hungarian matching of the unassigned detections to unmatched active tracks and lost tracks; with
        ``looks``, the score is the mean of the embedding's similarity and the look's (1 at no difference, 0 at
        ``look_gate``) for the tracks that have a look."""
        taken = list(assigned.values())
        rows = [i for i in range(len(boxes)) if i not in assigned]
        candidates = [t for t in self.tracks + self.lost if t not in taken and t.embedding is not None
                      and t.embedding.shape == units.shape[1:]]
        if not rows or not candidates:
            return {}
        means = _unit(np.stack([t.embedding for t in candidates if t.embedding is not None]))
        similarity = units[rows] @ means.T
        if looks is not None:
            has_look = np.array([t.look is not None for t in candidates])
            look_sim = 1 - self._look_distance(looks[rows], candidates) / self.look_gate
            similarity = np.where(has_look[None], (similarity + look_sim) / 2, similarity)
        score = similarity + self.position_weight * iou_matrix(boxes[rows], np.stack([t.box for t in candidates]))
        r, c = linear_sum_assignment(-score)
        return {rows[i]: candidates[j] for i, j in zip(r, c, strict=True)
                if score[i, j] >= self.min_similarity}

    def smooth(self, ids: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """Fold this frame's ``probs`` ``(N, C)`` into each track's moving average; return the averages."""
        by_id = {t.track_id: t for t in self.tracks}
        out = probs.copy()
        for i, tid in enumerate(ids):
            track = by_id[int(tid)]
            if track.probs.shape == probs[i].shape:
                track.probs = self.smoothing * probs[i] + (1 - self.smoothing) * track.probs
            else:  # a new track, or the label set changed (an adapter was applied): start over
                track.probs = probs[i].copy()
            out[i] = track.probs
        return out

    def rescale(self, sx: float, sy: float) -> None:
        """Scale every track's last box by ``(sx, sy)``: the frames changed size (the camera sends smaller or
        larger frames), and overlap matching must compare boxes at the new size."""
        scale = np.array([sx, sy, sx, sy], np.float32)
        for track in self.tracks + self.lost:
            track.box = track.box * scale

    def reset(self) -> None:
        """Forget every track, lost ones included (ids keep counting up)."""
        self.tracks = []
        self.lost = []
