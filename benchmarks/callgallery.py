"""Video-call gallery frames that look like Zoom, Google Meet or Microsoft Teams gallery view.

``gallery_util`` stacks equal tiles edge to edge with black empty tiles. A real call differs in ways a layout
finder or a detector can trip on, so this module composites them in numpy: a dark background, equal 16:9 tiles
with gaps and (per style) rounded corners, the grid centred with a centred short last row, a name label in every
tile, an active-speaker border that moves about once a second, camera-off tiles (initials in a circle, or the
name), and a reorder of the seats mid-clip. The faces are the 14 real ``gallery_util.SOURCES``; when they repeat,
each copy differs (start time, mirror, zoom around the face, tint) so participants can be told apart.

Static parts (background, camera-off and photo tiles, labels, corner and border masks) are drawn once with
Pillow; per frame only the clip tiles are resized and pasted and the speaker border blended. The truth (tile
boxes, who sits in which tile, who has a camera) comes with the frames. Nothing is stored in the repository.

Usage:
    python benchmarks/callgallery.py --style zoom --participants 49 --size 1920x1080 --png out.png
    python benchmarks/callgallery.py --participants 36 --camera-off 6 --seconds 8 --video out.y4m
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import subprocess
import time
import unicodedata
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from gallery_util import SOURCES, TileSource
from PIL import Image, ImageDraw, ImageFont

RGB = tuple[int, int, int]
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
WHITE: RGB = (255, 255, 255)
# Label fonts (``font=``): DejaVu Sans (the default), Pillow's own Aileron (always there), and where the system
# has them (Debian fonts-liberation2, fonts-roboto-unhinted, fonts-open-sans) Arial-, Meet- and web-like ones.
FONTS: dict[str, Path | None] = {
    "dejavu": FONT_DIR / "DejaVuSans.ttf", "aileron": None,
    "liberation": Path("/usr/share/fonts/truetype/liberation2/LiberationSans-Regular.ttf"),
    "roboto": Path("/usr/share/fonts/truetype/roboto/unhinted/RobotoTTF/Roboto-Regular.ttf"),
    "opensans": Path("/usr/share/fonts/truetype/open-sans/OpenSans-Regular.ttf"),
}

# Face box (centre x, centre y, width, height) as fractions of each SOURCES entry after its crop: the mean
# MediaPipe short-range box over the clip at 2 fps (or the photo), measured once; used to zoom around the face.
FACE_BOXES: tuple[tuple[float, float, float, float], ...] = (
    (0.569, 0.606, 0.427, 0.569), (0.705, 0.599, 0.359, 0.638), (0.457, 0.567, 0.271, 0.482),
    (0.574, 0.615, 0.420, 0.559), (0.521, 0.621, 0.273, 0.364), (0.776, 0.588, 0.478, 0.636),
    (0.446, 0.561, 0.362, 0.483), (0.455, 0.562, 0.270, 0.481), (0.569, 0.604, 0.417, 0.521),
    (0.440, 0.230, 0.193, 0.258), (0.500, 0.610, 0.357, 0.486), (0.542, 0.352, 0.303, 0.431),
    (0.569, 0.594, 0.444, 0.556), (0.466, 0.588, 0.273, 0.486),
)
# How the k-th copy of a source differs from the others: (mirrored, zoom, RGB gains).
VARIANTS: tuple[tuple[bool, float, tuple[float, float, float]], ...] = (
    (False, 1.0, (1.0, 1.0, 1.0)),
    (True, 1.2, (1.10, 1.02, 0.88)),  # warm
    (False, 1.4, (0.90, 0.97, 1.12)),  # cool
    (True, 1.0, (0.80, 0.80, 0.84)),  # dim
)
MAX_FACE_FILL = 0.8  # the zoom stops where the face box would take more than this share of the tile height

NAMES: tuple[str, ...] = (
    "Ana Souza", "Kenji Watanabe", "Priya Raghunathan", "Oluwaseun Adeyemi", "María José Fernández-Castillo",
    "Liam O'Connor", "Fatima Al-Zahra", "Chen Wei", "Sofia Rossi", "Mateus Oliveira", "Aisha Mohammed",
    "Jakob Müller", "Nguyen Thi Lan", "Dmitri Volkov", "Amara Okafor", "Hiroshi Tanaka", "Isabella García",
    "Mohammed Rahman", "Elena Petrova", "Kwame Mensah", "Yuki Sato", "Lucas Dubois", "Ingrid Johansson",
    "Rajesh Kumar", "Camila Rodríguez", "Tomasz Kowalski", "Mei Lin Tan", "Alejandro Gómez Hernández",
    "Zanele Dlamini", "Ahmed Hassan", "Sarah Goldberg", "Arjun Venkataraman-Iyer", "Leilani Kahale",
    "Olga Nowak", "Diego Torres", "Seo-yeon Park", "Emeka Nwosu", "Charlotte Williams", "Hamid Karimi",
    "Anna Lindqvist", "Carlos Mendes", "Thandiwe Ndlovu", "Giulia Bianchi", "Wei-Jie Huang", "Noah Schmidt",
    "Fernanda Lima", "Aleksandr Mikhailovich Sokolov", "Amina Diallo", "Patrick Murphy",
)


@dataclasses.dataclass(frozen=True)
class CallStyle:
    """How one call app draws its gallery view (colours RGB, lengths in pixels at any canvas size)."""

    name: str
    background: RGB  # behind the tiles: margins and gaps
    gap: int  # between neighbouring tiles
    radius: int  # tile corner radius, 0 = square corners
    off_tile: RGB  # a camera-off tile, a little lighter than the background
    label_pill: bool  # the name sits on a dark semi-transparent pill (Zoom, Teams) or is plain text (Meet)
    label_alpha: int  # pill opacity 0-255
    speaker: RGB  # active-speaker border colour
    speaker_width: int
    margin: int  # least space between the grid and the canvas edge
    off_initials: bool  # camera off: initials in a circle (Meet, Teams) or the full name centred (Zoom)
    avatars: tuple[RGB, ...] = ()  # initials circle colours, one picked per participant
    avatar_text: RGB = WHITE


STYLES: dict[str, CallStyle] = {
    "zoom": CallStyle("zoom", background=(26, 26, 26), gap=3, radius=0, off_tile=(36, 36, 36), label_pill=True,
                      label_alpha=150, speaker=(35, 217, 89), speaker_width=3, margin=4, off_initials=False),
    "meet": CallStyle("meet", background=(32, 33, 36), gap=8, radius=10, off_tile=(60, 64, 67), label_pill=False,
                      label_alpha=0, speaker=(138, 180, 248), speaker_width=3, margin=16, off_initials=True,
                      avatars=((26, 115, 232), (230, 81, 0), (0, 137, 123), (142, 36, 170), (213, 0, 0),
                               (51, 103, 214), (11, 128, 67), (121, 85, 72))),
    "teams": CallStyle("teams", background=(31, 31, 31), gap=6, radius=6, off_tile=(41, 41, 41), label_pill=True,
                       label_alpha=170, speaker=(127, 133, 245), speaker_width=2, margin=8, off_initials=True,
                       avatars=((231, 198, 245), (190, 226, 248), (255, 213, 170), (199, 233, 196),
                                (248, 196, 204), (212, 214, 255)), avatar_text=(36, 36, 36)),
}


@dataclasses.dataclass(frozen=True)
class CallGallery:
    """Call frames and their truth; tile ``j`` holds participant ``seat[t, j]`` at frame ``t``."""

    frames: np.ndarray  # (T, H, W, 3) uint8 RGB; (0, H, W, 3) when streamed to a file
    tiles: np.ndarray  # (n, 4) float32 x, y, w, h of every tile, row-major
    row_counts: tuple[int, ...]  # tiles per row
    seat: np.ndarray  # (T, n) participant in tile j at frame t
    has_face: np.ndarray  # (n,) bool, False = camera off
    names: tuple[str, ...]  # per participant
    speaker: np.ndarray  # (T,) the active speaker (participant) at frame t
    style: str
    shown: tuple[str, ...] = ()  # the name label each participant's tile shows (cut with "…" when long)

    def participant_at(self, t: int, boxes: np.ndarray) -> np.ndarray:
        """``(N,)`` participant whose tile holds each box centre at frame ``t``, -1 outside every tile."""
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        cx = boxes[:, :1] + boxes[:, 2:3] / 2
        cy = boxes[:, 1:2] + boxes[:, 3:4] / 2
        x, y, w, h = self.tiles.T.astype(np.float64)
        inside = (cx >= x) & (cx < x + w) & (cy >= y) & (cy < y + h)
        return np.where(inside.any(1), self.seat[t][inside.argmax(1)], -1)

    def score(self, t: int, boxes: np.ndarray) -> tuple[int, int, int]:
        """``(camera-on participants found, extra boxes, boxes on camera-off tiles)`` for frame ``t``'s boxes:
        a camera-on participant counts once; more boxes in its tile and boxes outside every tile are extra."""
        who = self.participant_at(t, boxes)
        on = who[(who >= 0) & self.has_face[np.maximum(who, 0)]]
        found = len(set(on.tolist()))
        off = int(((who >= 0) & ~self.has_face[np.maximum(who, 0)]).sum())
        return found, len(who) - found - off, off

    @property
    def faces(self) -> int:
        """Participants with a camera on."""
        return int(self.has_face.sum())


def _tile_width(n: int, cols: int, size: tuple[int, int], gap: int, margin: int) -> float:
    rows = math.ceil(n / cols)
    free_w = size[0] - 2 * margin - (cols - 1) * gap
    free_h = size[1] - 2 * margin - (rows - 1) * gap
    return min(free_w / cols, free_h / rows * 16 / 9)


def call_grid(n: int, size: tuple[int, int], *, gap: int = 0, margin: int = 0) -> tuple[int, int]:
    """``(cols, rows)`` a call uses for ``n`` 16:9 tiles on a ``size`` canvas: the largest tiles (ties: more
    columns, the canvas being wide). 25 -> 5x5, 36 -> 6x6, 49 -> 7x7 on a 16:9 canvas."""
    if n < 1:
        raise ValueError(f"a call needs at least one participant, not {n}")
    cols = max(range(1, n + 1), key=lambda c: (round(_tile_width(n, c, size, gap, margin), 6), c))
    return cols, math.ceil(n / cols)


def call_layout(n: int, size: tuple[int, int], style: CallStyle) -> tuple[np.ndarray, tuple[int, ...]]:
    """The tiles a call draws for ``n`` participants: boxes ``(n, 4)`` x, y, w, h (whole pixels, row-major, the
    grid and each row centred, the short last row too) and the tiles per row."""
    cols, rows = call_grid(n, size, gap=style.gap, margin=style.margin)
    tw = int(_tile_width(n, cols, size, style.gap, style.margin))
    th = int(tw * 9 / 16)
    counts = tuple(min(cols, n - r * cols) for r in range(rows))
    y0 = (size[1] - rows * th - (rows - 1) * style.gap) // 2
    tiles = []
    for r, k in enumerate(counts):
        x0 = (size[0] - k * tw - (k - 1) * style.gap) // 2
        tiles += [(x0 + c * (tw + style.gap), y0 + r * (th + style.gap), tw, th) for c in range(k)]
    return np.array(tiles, np.float32), counts


def _font(size: int, bold: bool = False, family: str = "dejavu") -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans (or another of ``FONTS``) when the system has it, else Pillow's own scalable default font."""
    path = FONT_DIR / "DejaVuSans-Bold.ttf" if bold else FONTS[family]
    if path is not None and path.exists():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


def drawable(text: str, font: Any) -> str:
    """``text`` as ``font`` can draw it: a letter the font has no glyph for (Pillow's Aileron has no accented
    letters and would draw an empty box) becomes its base letter ("García" -> "Garcia"), as the label on screen
    then reads; the benchmarks' truth is the drawn text."""
    def lacks(ch: str) -> bool:
        return not ch.isspace() and bytes(font.getmask(ch)) == bytes(font.getmask("\U0010fffd"))

    def base(ch: str) -> str:
        folded = "".join(c for c in unicodedata.normalize("NFD", ch) if not unicodedata.combining(c))
        return folded if folded and not lacks(folded) else ch

    return "".join(base(ch) if lacks(ch) else ch for ch in text)


def _fit(text: str, font: Any, width: float) -> str:
    """``text`` cut with an ellipsis to fit ``width`` pixels, as call apps cut long names."""
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text.rstrip() + "…"


def initials(name: str) -> str:
    """First letters of the first and last word ("Ana Souza" -> "AS")."""
    words = name.replace("-", " ").split()
    return (words[0][0] + (words[-1][0] if len(words) > 1 else "")).upper()


def _mask(size: tuple[int, int], draw: Callable[[ImageDraw.ImageDraw, int], None], ss: int = 4) -> np.ndarray:
    """A float32 ``(h, w)`` coverage mask drawn ``ss`` times larger and shrunk (antialiased shapes)."""
    im = Image.new("L", (size[0] * ss, size[1] * ss), 0)
    draw(ImageDraw.Draw(im), ss)
    return np.asarray(im.resize(size, Image.Resampling.BOX), np.float32) / 255


def _text_mask(size: tuple[int, int], xy: tuple[float, float], text: str, font: Any, anchor: str) -> np.ndarray:
    im = Image.new("L", size, 0)
    ImageDraw.Draw(im).text(xy, text, fill=255, font=font, anchor=anchor)
    return np.asarray(im, np.float32) / 255


def _over(layers: list[tuple[np.ndarray, RGB, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Premultiplied colour ``(h, w, 3)`` and alpha ``(h, w, 1)`` of coverage masks stacked bottom-up."""
    h, w = layers[0][0].shape
    colour, alpha = np.zeros((h, w, 3), np.float32), np.zeros((h, w, 1), np.float32)
    for mask, rgb, opacity in layers:
        a = mask[..., None] * opacity
        colour = np.asarray(rgb, np.float32) * a + colour * (1 - a)
        alpha = a + alpha * (1 - a)
    return colour, alpha


@dataclasses.dataclass
class _Overlay:
    """A blended patch (the name label) at ``(x, y)`` of a tile."""

    x: int
    y: int
    colour: np.ndarray
    alpha: np.ndarray

    def apply(self, tile: np.ndarray) -> None:
        h, w = self.alpha.shape[:2]
        region = tile[self.y:self.y + h, self.x:self.x + w]
        region[:] = (region * (1 - self.alpha) + self.colour + 0.5).astype(np.uint8)

    @classmethod
    def crop(cls, colour: np.ndarray, alpha: np.ndarray) -> _Overlay | None:
        ys, xs = np.nonzero(alpha[..., 0] > 0)
        if not len(ys):
            return None
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        return cls(int(x0), int(y0), colour[y0:y1, x0:x1].copy(), alpha[y0:y1, x0:x1].copy())


@dataclasses.dataclass
class _Face:
    """Where a camera-on participant's tile comes from: source frames, a window in them, mirror and tint."""

    frames: np.ndarray  # (T, H, W, 3) decoded source (the whole clip at the output fps, or one photo)
    window: tuple[int, int, int, int]  # x, y, w, h in those frames, the tile's aspect ratio
    mirror: bool
    lut: np.ndarray  # (256, 1, 3) uint8 tint
    start: int  # first frame index


@functools.lru_cache(maxsize=32)
def _probe(path: Path) -> tuple[int, int]:
    """``(width, height)`` of a clip."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "stream=width,height",
                            "-of", "csv=p=0", str(path)], capture_output=True, text=True, check=True)
    w, h = (int(v) for v in probe.stdout.strip().split(","))
    return w, h


def _decode_clip(path: Path, fps: float, scale: float) -> np.ndarray:
    """Every frame of a clip at ``fps``, scaled by ``scale`` (one ffmpeg decode, rawvideo RGB pipe)."""
    w, h = _probe(path)
    w, h = max(2, round(w * scale / 2) * 2), max(2, round(h * scale / 2) * 2)
    run = subprocess.run(["ffmpeg", "-v", "error", "-i", str(path), "-an", "-vf",
                          f"fps={fps},scale={w}:{h}:flags=area", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True)
    if run.returncode:
        raise RuntimeError(f"ffmpeg failed decoding {path}: {run.stderr.decode()[-500:]}")
    return np.frombuffer(run.stdout, np.uint8).reshape(-1, h, w, 3)


def _crop_box(src: TileSource, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``src.crop`` (ffmpeg ``w:h:x:y``) as x, y, w, h; the whole frame without one."""
    if not src.crop:
        return 0, 0, *size
    w, h, x, y = (int(v) for v in src.crop.split(":"))
    return x, y, w, h


class _Call:
    """Everything a call's frames need, planned once; ``render`` yields the frames."""

    def __init__(self, participants: int, size: tuple[int, int], style: str, camera_off: int, frames: int,
                 fps: float, reorder_at: int | None, seed: int, font: str = "dejavu") -> None:
        if style not in STYLES:
            raise ValueError(f"style must be one of {sorted(STYLES)}, not {style!r}")
        if not 1 <= participants <= len(NAMES):
            raise ValueError(f"participants must be 1-{len(NAMES)}, not {participants}")
        if not 0 <= camera_off <= participants:
            raise ValueError(f"camera_off must be 0-{participants}, not {camera_off}")
        if font not in FONTS:
            raise ValueError(f"font must be one of {sorted(FONTS)}, not {font!r}")
        self.style, self.size, self.n, self.fps, self.count = STYLES[style], size, participants, fps, frames
        self.font = font
        rng = np.random.default_rng(seed)
        self.tiles, self.row_counts = call_layout(participants, size, self.style)
        self.tw, self.th = int(self.tiles[0, 2]), int(self.tiles[0, 3])
        self.names = tuple(NAMES[i] for i in rng.permutation(len(NAMES))[:participants])
        self.has_face = np.ones(participants, bool)
        self.has_face[rng.choice(participants, camera_off, replace=False)] = False
        self.seat = np.tile(np.arange(participants), (frames, 1))
        if reorder_at is not None and participants > 1:
            self.seat[max(0, reorder_at):] = self._reorder(rng)
        self.speaker = self._speakers(rng)
        self._corners = self._corner_alpha()
        self._border = self._border_pixels()
        self.shown = list(self.names)  # the label text each tile shows (a long name cut with an ellipsis)
        self._labels = [self._label(p) for p in range(participants)]
        self._faces: list[_Face | None] = self._plan_faces()
        # Tiles that never change (camera off, photos), finished once.
        self._static: list[np.ndarray | None] = [None] * participants
        for p in range(participants):
            face = self._faces[p]
            if face is None:
                self._static[p] = self._off_tile(p)
            elif len(face.frames) == 1:
                self._static[p] = self._face_tile(p, 0)

    def _reorder(self, rng: np.random.Generator) -> np.ndarray:
        """Seats after the reorder: a rotation by 1-3 seats, then a few swaps that keep everyone moving."""
        n = self.n
        order = np.roll(np.arange(n), -int(rng.integers(1, min(3, n - 1) + 1)))
        for _ in range(n // 6):
            a, b = rng.choice(n, 2, replace=False)
            if order[b] != a and order[a] != b:
                order[a], order[b] = order[b], order[a]
        return order

    def _speakers(self, rng: np.random.Generator) -> np.ndarray:
        """The active speaker per frame, a different (camera-on if any) participant about every second."""
        pool = np.flatnonzero(self.has_face) if self.has_face.any() else np.arange(self.n)
        every = max(1, round(self.fps))
        out, current = np.empty(self.count, np.int64), -1
        for t in range(self.count):
            if t % every == 0:
                choices = pool[pool != current] if len(pool) > 1 else pool
                current = int(rng.choice(choices))
            out[t] = current
        return out

    def _corner_alpha(self) -> np.ndarray | None:
        """Top-left ``(r, r, 1)`` coverage of a rounded corner (antialiased), None for square tiles."""
        r = min(self.style.radius, self.th // 2)
        if r <= 0:
            return None
        yy, xx = np.mgrid[0:r, 0:r] + 0.5
        d = np.hypot(r - xx, r - yy)
        return np.clip(r - d + 0.5, 0, 1).astype(np.float32)[..., None]

    def _border_pixels(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pixels ``(ys, xs, alpha)`` of the active-speaker border inside a tile (following its corners)."""
        w, r, size = self.style.speaker_width, min(self.style.radius, self.th // 2), (self.tw, self.th)

        def draw(d: ImageDraw.ImageDraw, ss: int) -> None:
            d.rounded_rectangle((0, 0, size[0] * ss - 1, size[1] * ss - 1), radius=r * ss, outline=255, width=w * ss)

        mask = _mask(size, draw)
        ys, xs = np.nonzero(mask > 0)
        return ys, xs, mask[ys, xs][:, None]

    def _label(self, p: int) -> _Overlay | None:
        """The name label at the bottom left (Zoom shows none on a camera-off tile: the name is centred there)."""
        if not self.has_face[p] and not self.style.off_initials:
            return None
        size, th = (self.tw, self.th), self.th
        fs = int(np.clip(round(th * 0.085), 9, 24))
        font, pad = _font(fs, family=self.font), max(3, round(th * 0.035))
        px, py = round(fs * 0.5), round(fs * 0.3)
        text = _fit(drawable(self.names[p], font), font, self.tw - 2 * pad - 2 * px)
        self.shown[p] = text
        text_w = font.getlength(text)
        box = (pad, th - pad - fs - 2 * py, pad + text_w + 2 * px, th - pad)
        mid = ((box[1] + box[3]) / 2)
        layers = []
        if self.style.label_pill:
            def pill(d: ImageDraw.ImageDraw, ss: int) -> None:
                d.rounded_rectangle(tuple(v * ss for v in box), radius=(box[3] - box[1]) * ss // 4, fill=255)

            layers.append((_mask(size, pill), (0, 0, 0), self.style.label_alpha / 255))
        else:  # plain text, with a soft shadow as Meet draws it
            layers.append((_text_mask(size, (box[0] + px + 1, mid + 1), text, font, "lm"), (0, 0, 0), 0.6))
        layers.append((_text_mask(size, (box[0] + px, mid), text, font, "lm"), WHITE, 1.0))
        return _Overlay.crop(*_over(layers))

    def _finish(self, tile: np.ndarray, p: int) -> np.ndarray:
        """Add the label and round the corners onto the background; ``tile`` is changed in place."""
        label = self._labels[p]
        if label is not None:
            label.apply(tile)
        a = self._corners
        if a is not None:
            r, bg = len(a), np.asarray(self.style.background, np.float32)
            for ys, xs, corner in ((slice(0, r), slice(0, r), a), (slice(0, r), slice(-r, None), a[:, ::-1]),
                                   (slice(-r, None), slice(0, r), a[::-1]),
                                   (slice(-r, None), slice(-r, None), a[::-1, ::-1])):
                region = tile[ys, xs]
                region[:] = (region * corner + bg * (1 - corner) + 0.5).astype(np.uint8)
        return tile

    def _off_tile(self, p: int) -> np.ndarray:
        """A camera-off tile: initials in a coloured circle (Meet, Teams) or the name centred (Zoom)."""
        size, (tw, th) = (self.tw, self.th), (self.tw, self.th)
        tile = np.empty((th, tw, 3), np.uint8)
        tile[:] = self.style.off_tile
        if self.style.off_initials:
            d = round(th * 0.42)
            box = ((tw - d) / 2, (th - d) / 2, (tw + d) / 2, (th + d) / 2)

            def circle(draw: ImageDraw.ImageDraw, ss: int) -> None:
                draw.ellipse(tuple(v * ss for v in box), fill=255)

            colour = self.style.avatars[sum(map(ord, self.names[p])) % len(self.style.avatars)]
            text = _text_mask(size, (tw / 2, th / 2), initials(self.names[p]), _font(max(8, round(d * 0.4)), True),
                              "mm")
            layers = [(_mask(size, circle), colour, 1.0), (text, self.style.avatar_text, 1.0)]
        else:
            font = _font(int(np.clip(round(th * 0.11), 10, 40)))
            name = _fit(self.names[p], font, tw * 0.9)
            layers = [(_text_mask(size, (tw / 2, th / 2), name, font, "mm"), WHITE, 1.0)]
        colour, alpha = _over(layers)
        tile[:] = (tile * (1 - alpha) + colour + 0.5).astype(np.uint8)
        return self._finish(tile, p)

    def _plan_faces(self) -> list[_Face | None]:
        """Give the i-th camera-on participant ``SOURCES[i % 14]``, copy ``i // 14`` with that copy's variant;
        decode each distinct clip once, at the size the largest window needs."""
        on = np.flatnonzero(self.has_face)
        uses = [(int(p), i % len(SOURCES), i // len(SOURCES)) for i, p in enumerate(on)]
        copies = [sum(1 for _, s, _ in uses if s == k) for k in range(len(SOURCES))]
        aspect = self.tw / self.th
        # Window (in source pixels at scale 1) of every use, and the decode scale per file.
        plans, scale = [], {}
        for p, s, k in uses:
            src = SOURCES[s]
            mirror, zoom, gains = VARIANTS[k % len(VARIANTS)]
            native = Image.open(src.path).size if src.is_photo else None
            cx, cy, cw, ch = _crop_box(src, native or _probe(src.path))
            ww, wh = (ch * aspect, ch) if cw / ch > aspect else (cw, cw / aspect)
            fx, fy, _, fh = FACE_BOXES[s]
            zoom = min(zoom, max(1.0, MAX_FACE_FILL * wh / (fh * ch)))
            ww, wh = ww / zoom, wh / zoom
            x = cx + min(max(fx * cw - ww / 2, 0), cw - ww)
            y = cy + min(max(fy * ch - wh / 2, 0), ch - wh)
            plans.append((p, s, k, (x, y, ww, wh), mirror, gains))
            scale[src.path] = min(1.0, max(scale.get(src.path, 0.0), 1.1 * self.tw / ww))
        paths = {SOURCES[s].path: SOURCES[s].is_photo for _, s, _ in uses}
        with ThreadPoolExecutor(max_workers=4) as pool:  # the ffmpeg decodes run side by side
            clips = {path: pool.submit(_decode_clip, path, self.fps, scale[path])
                     for path, photo in paths.items() if not photo}
            decoded = {path: np.asarray(Image.open(path).convert("RGB"))[None]
                       for path, photo in paths.items() if photo}
            decoded |= {path: job.result() for path, job in clips.items()}
        faces: list[_Face | None] = [None] * self.n
        for p, s, k, (x, y, ww, wh), mirror, gains in plans:
            src = SOURCES[s]
            frames = decoded[src.path]
            f = 1.0 if src.is_photo else scale[src.path]
            window = (round(x * f), round(y * f), max(1, round(ww * f)), max(1, round(wh * f)))
            lut = np.clip(np.arange(256)[:, None] * np.asarray(gains)[None], 0, 255).astype(np.uint8)[:, None]
            dur = len(frames) / self.fps
            start = round(((src.start_s + k * dur / copies[s]) % dur) * self.fps) if len(frames) > 1 else 0
            faces[p] = _Face(frames, window, mirror, lut, start)
        return faces

    def _face_tile(self, p: int, t: int) -> np.ndarray:
        face = self._faces[p]
        assert face is not None
        x, y, w, h = face.window
        frame = face.frames[(face.start + t) % len(face.frames)]
        interp = cv2.INTER_AREA if w > self.tw else cv2.INTER_LINEAR
        tile = cv2.resize(frame[y:y + h, x:x + w], (self.tw, self.th), interpolation=interp)
        if face.mirror:
            tile = cv2.flip(tile, 1)
        return self._finish(cv2.LUT(tile, face.lut), p)

    def render(self) -> Iterator[np.ndarray]:
        """The frames in order; the same canvas array is refilled each time (copy it to keep a frame)."""
        canvas = np.empty((self.size[1], self.size[0], 3), np.uint8)
        canvas[:] = self.style.background
        pos = self.tiles[:, :2].astype(int)
        ys, xs, alpha = self._border
        colour = np.asarray(self.style.speaker, np.float32) * alpha
        for t in range(self.count):
            for j, p in enumerate(self.seat[t]):
                static = self._static[p]
                x, y = pos[j]
                canvas[y:y + self.th, x:x + self.tw] = static if static is not None else self._face_tile(p, t)
            x, y = pos[int(np.flatnonzero(self.seat[t] == self.speaker[t])[0])]
            canvas[y + ys, x + xs] = (canvas[y + ys, x + xs] * (1 - alpha) + colour + 0.5).astype(np.uint8)
            yield canvas

    def gallery(self, frames: np.ndarray) -> CallGallery:
        return CallGallery(frames, self.tiles, self.row_counts, self.seat, self.has_face, self.names, self.speaker,
                           self.style.name, tuple(self.shown))


def build_call(participants: int, size: tuple[int, int] = (1920, 1080), *, style: str = "zoom", camera_off: int = 0,
               frames: int = 5, fps: float = 5.0, reorder_at: int | None = None, seed: int = 0,
               font: str = "dejavu") -> CallGallery:
    """``frames`` call gallery frames ``1/fps`` s apart: ``participants`` tiles in ``style``, ``camera_off`` of them
    (a seeded spread) without a face; from frame ``reorder_at`` on, everyone sits in another tile."""
    call = _Call(participants, size, style, camera_off, frames, fps, reorder_at, seed, font)
    out = np.empty((frames, size[1], size[0], 3), np.uint8)
    for t, frame in enumerate(call.render()):
        out[t] = frame
    return call.gallery(out)


def write_call_video(participants: int, size: tuple[int, int], out: Path, *, seconds: float = 8.0, fps: int = 25,
                     **kwargs: Any) -> CallGallery:
    """Stream a call gallery to ``out``: ``.y4m`` (yuv420p, for Chromium's fake camera) or ``.mp4`` (H.264).
    ``kwargs`` as in ``build_call``. Returns the truth for every frame; its ``frames`` is empty ``(0, H, W, 3)``."""
    out = Path(out)
    frames = round(seconds * fps)
    call = _Call(participants, size, kwargs.pop("style", "zoom"), kwargs.pop("camera_off", 0), frames, fps,
                 kwargs.pop("reorder_at", None), kwargs.pop("seed", 0))
    if kwargs:
        raise TypeError(f"unexpected arguments {sorted(kwargs)}")
    if out.suffix == ".y4m":
        codec = ["-pix_fmt", "yuv420p"]
    elif out.suffix == ".mp4":
        codec = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "18", "-pix_fmt", "yuv420p",
                 "-movflags", "+faststart"]
    else:
        raise ValueError(f"out must end in .y4m or .mp4, not {out.name}")
    cmd = ["ffmpeg", "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size[0]}x{size[1]}",
           "-r", str(fps), "-i", "-", *codec, str(out)]
    with subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdin is not None
        try:
            for frame in call.render():
                proc.stdin.write(frame.data)
        finally:
            proc.stdin.close()
            err = proc.stderr.read() if proc.stderr else b""
    if proc.returncode:
        raise RuntimeError(f"ffmpeg failed writing {out}: {err.decode()[-500:]}")
    return call.gallery(np.empty((0, size[1], size[0], 3), np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--participants", type=int, default=49)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--style", choices=sorted(STYLES), default="zoom")
    parser.add_argument("--camera-off", type=int, default=0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--png", type=Path, help="write the first frame here")
    parser.add_argument("--video", type=Path, help="write a .y4m or .mp4 here")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--fps", type=int, default=25)
    args = parser.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    common = {"style": args.style, "camera_off": args.camera_off, "seed": args.seed}
    start = time.perf_counter()
    if args.png:
        call = build_call(args.participants, (w, h), frames=1, **common)
        Image.fromarray(call.frames[0]).save(args.png)
        print(f"{args.png}: {call.faces} faces, rows {call.row_counts}, {time.perf_counter() - start:.2f} s")
    if args.video:
        start = time.perf_counter()
        frames = round(args.seconds * args.fps)
        call = write_call_video(args.participants, (w, h), args.video, seconds=args.seconds, fps=args.fps,
                                reorder_at=frames // 2, **common)
        took = time.perf_counter() - start
        print(f"{args.video}: {frames} frames in {took:.1f} s ({1000 * took / frames:.1f} ms/frame)")


if __name__ == "__main__":
    main()
