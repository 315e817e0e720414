"""Video-call gallery frames built with ffmpeg ``xstack`` from the real single-face clips and photos.

A gallery is a ``cols x rows`` grid at a given size; the first ``faces`` tiles each show one real face
(a clip, a quadrant of the 2x2 clip, or a photo, repeated as needed), the rest are black (camera off).
Every tile is scaled and cropped to fill it, like a video call does. Ground truth: one face per face tile.
Used by ``benchmarks/gallery.py`` and the recall tests; nothing is stored in the repository.
"""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
from pathlib import Path

import numpy as np

SHARED = Path(os.environ.get("EMOWIDGETS_SHARED", Path(__file__).resolve().parent.parent.parent / "shared"))
CLIPS = SHARED / "assets" / "clips"
IMAGES = SHARED / "assets" / "images"


@dataclasses.dataclass(frozen=True)
class TileSource:
    """One face: a clip (looped) or a photo; ``crop`` is an ffmpeg crop of the source before scaling."""

    path: Path
    crop: str = ""
    start_s: float = 0.0

    @property
    def is_photo(self) -> bool:
        """Photos are looped as still frames."""
        return self.path.suffix.lower() in (".jpg", ".jpeg", ".png")


QUADRANTS = ("320:240:0:0", "320:240:320:0", "320:240:0:240", "320:240:320:240")
# 14 distinct faces: 7 moving (the single-face clips and the four 2x2-gallery tiles), 7 photos.
SOURCES: tuple[TileSource, ...] = (
    TileSource(CLIPS / "single_face.mp4", start_s=4.0),
    TileSource(CLIPS / "sad_to_happy.mp4", start_s=6.0),
    TileSource(CLIPS / "single_face_short.mp4"),
    *(TileSource(CLIPS / "multi_face.mp4", crop=q) for q in QUADRANTS),
    TileSource(IMAGES / "pair_pyfeat_smile.jpg"),
    TileSource(IMAGES / "pair_franck_neutral.jpg"),
    TileSource(IMAGES / "single_astronaut.png", crop="512:384:0:40"),
    TileSource(IMAGES / "single_man_smiling.jpg", crop="572:420:0:40"),
    TileSource(IMAGES / "single_obama_smiling.jpg", crop="910:640:0:60"),
    TileSource(IMAGES / "pair_franck_smile.jpg"),
    TileSource(IMAGES / "pair_pyfeat_neutral.jpg"),
)


def grid_for(faces: int) -> tuple[int, int]:
    """``(cols, rows)`` of the smallest square-ish grid holding ``faces`` tiles (25 -> 5x5, 36 -> 6x6)."""
    cols = math.ceil(math.sqrt(faces))
    return cols, math.ceil(faces / cols)


@dataclasses.dataclass(frozen=True)
class Gallery:
    """Frames ``(T, H, W, 3)`` uint8 RGB and the layout; face tile ``i`` is at ``(i % cols, i // cols)``."""

    frames: np.ndarray
    faces: int
    cols: int
    rows: int

    @property
    def tile_size(self) -> tuple[int, int]:
        """``(width, height)`` of one tile in pixels."""
        return self.frames.shape[2] // self.cols, self.frames.shape[1] // self.rows

    def tile_of(self, boxes: np.ndarray) -> np.ndarray:
        """Tile index of each box centre ``(N,)``."""
        tw, th = self.tile_size
        cx = boxes[:, 0] + boxes[:, 2] / 2
        cy = boxes[:, 1] + boxes[:, 3] / 2
        col = np.clip((cx // tw).astype(int), 0, self.cols - 1)
        return np.clip((cy // th).astype(int), 0, self.rows - 1) * self.cols + col

    def score(self, boxes: np.ndarray) -> tuple[int, int]:
        """``(faces found, false positives)`` for one frame's boxes: a face tile counts once; extra boxes
        in a tile and boxes in empty tiles are false positives."""
        tiles = self.tile_of(boxes)
        found = len({int(t) for t in tiles if t < self.faces})
        return found, len(tiles) - found


def ffmpeg_command(faces: int, size: tuple[int, int], seconds: float, fps: int, out: str) -> list[str]:
    """The ffmpeg command writing a ``faces``-face gallery to ``out`` (a file, or ``-`` for raw RGB)."""
    cols, rows = grid_for(faces)
    width, height = size
    tw, th = width // cols, height // rows
    used = [SOURCES[i % len(SOURCES)] for i in range(faces)]
    distinct = list(dict.fromkeys(used))
    cmd = ["ffmpeg", "-v", "error", "-y"]
    for src in distinct:
        if src.is_photo:
            cmd += ["-loop", "1", "-framerate", str(fps), "-t", str(seconds), "-i", str(src.path)]
        else:
            cmd += ["-stream_loop", "-1", "-ss", str(src.start_s), "-t", str(seconds), "-i", str(src.path)]
    cmd += ["-f", "lavfi", "-i", f"color=c=black:s={tw}x{th}:r={fps}:d={seconds}"]
    chains = []
    copies: dict[TileSource, list[str]] = {}
    for k, src in enumerate(distinct):
        copies[src] = [f"s{k}_{j}" for j in range(used.count(src))]
        crop = f"crop={src.crop}," if src.crop else ""
        chains.append(f"[{k}:v]{crop}scale={tw}:{th}:force_original_aspect_ratio=increase,crop={tw}:{th},"
                      f"setsar=1,fps={fps},format=yuv420p,split={len(copies[src])}"
                      + "".join(f"[{c}]" for c in copies[src]))
    labels = [copies[src].pop() for src in used]
    blanks = cols * rows - faces
    if blanks:
        chains.append(f"[{len(distinct)}:v]format=yuv420p,split={blanks}" + "".join(f"[b{j}]" for j in range(blanks)))
        labels += [f"b{j}" for j in range(blanks)]
    layout = "|".join(f"{(i % cols) * tw}_{(i // cols) * th}" for i in range(cols * rows))
    stack = f"xstack=inputs={cols * rows}:layout={layout}:fill=black" if cols * rows > 1 else "null"
    chains.append("".join(f"[{lab}]" for lab in labels) + f"{stack},pad={width}:{height}[v]")
    cmd += ["-filter_complex", ";".join(chains), "-map", "[v]", "-t", str(seconds), "-r", str(fps), "-an"]
    if out == "-":
        return [*cmd, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    return [*cmd, "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", out]


def build_gallery(faces: int, size: tuple[int, int] = (1280, 720), frames: int = 5, fps: int = 5) -> Gallery:
    """``frames`` gallery frames ``1/fps`` s apart (``faces`` real faces in a grid at ``size``)."""
    width, height = size
    run = subprocess.run(ffmpeg_command(faces, size, frames / fps, fps, "-"), capture_output=True)
    if run.returncode:
        raise RuntimeError(f"ffmpeg failed building a {faces}-face gallery: {run.stderr.decode()[-500:]}")
    raw = run.stdout
    video = np.frombuffer(raw, np.uint8).reshape(-1, height, width, 3)[:frames]
    cols, rows = grid_for(faces)
    return Gallery(video, faces, cols, rows)


def write_gallery_video(faces: int, size: tuple[int, int], out: Path, seconds: float = 10.0, fps: int = 25) -> Path:
    """Write a gallery clip (H.264 MP4, or Y4M for Chromium's fake camera) to ``out``."""
    subprocess.run(ffmpeg_command(faces, size, seconds, fps, str(out)), capture_output=True, check=True)
    return out
