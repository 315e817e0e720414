"""``emowidgets.classroom()``: a lesson's wiring, a source and a :class:`~emowidgets.pipeline.Pipeline` feeding
a :class:`~emowidgets.classview.ClassView`, with per-student calibration and the class's adapters.

The source is a shared video-call gallery (``"screen"``), a camera, an ipywebrtc stream or a video file; the
view is the page; :class:`Classroom` holds them together and closes them together. A tile's *calibrate* button
opens a :class:`~emowidgets.calibration.CalibrationWidget` for that student (a name is needed first: adapters are
kept by name, see :mod:`emowidgets.classadapters`); *calibrate room* opens one whose shots are every face in view.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ipywidgets
import numpy as np
import traitlets
from ipywebrtc import MediaStream

from emowidgets.adapter import Adapter
from emowidgets.calibration import CalibrationWidget, ShotSource
from emowidgets.classadapters import ClassAdapters
from emowidgets.classview import NO_FACES_ENDED, ClassView
from emowidgets.entry import ClosingContext, check_camera_options, check_source, marimo_parts
from emowidgets.errors import EmowidgetsError, OptionsError
from emowidgets.pipeline import Pipeline
from emowidgets.session import Session
from emowidgets.sources import VideoFileSource, entry_options
from emowidgets.startup import Running, others_text, start_pipeline
from emowidgets.vocab import FrameResult
from emowidgets.widgets import BROWSER_OPTIONS, CameraWidget, FramePreview, check_camera_settings

PRESETS = {"camera": "short", "gallery": "gallery"}
"""``classroom(preset=...)``'s deprecated names of the ``detector=`` choices."""


class PreviewedVideo(VideoFileSource):
    """A recording whose frames are also handed, before each is processed, to ``on_frame`` (a
    :class:`~emowidgets.widgets.FramePreview`'s ``hold``), so the page can show them."""

    on_frame: Callable[[np.ndarray], None] | None = None

    def frames(self) -> Iterator[tuple[np.ndarray, int]]:
        """The recording's frames, as :meth:`VideoFileSource.frames`, each shown to ``on_frame`` first."""
        for rgb, ts in super().frames():
            if self.on_frame is not None:
                self.on_frame(rgb)
            yield rgb, ts


def _every_face(result: FrameResult) -> np.ndarray:
    return np.arange(len(result.track_ids))


class Classroom(ClosingContext, ipywidgets.VBox):  # type: ignore[misc]
    """What :func:`classroom` returns: ``view`` (the :class:`ClassView`), ``camera`` (browser sources),
    ``video`` (file sources), ``preview`` (the page's picture of a video's frames, a
    :class:`~emowidgets.widgets.FramePreview`; ``None`` for browser sources), ``pipeline``, ``session`` (the
    :class:`~emowidgets.session.Session` wiring the source to the view, as ``live()`` does), ``adapters`` (the
    :class:`ClassAdapters` by name) and ``panel`` (the open calibration panel, if any). ``close()`` stops
    everything."""

    def __init__(self, view: ClassView, pipeline: Pipeline, camera: CameraWidget | None = None,
                 video: VideoFileSource | None = None) -> None:
        self.preview = FramePreview() if isinstance(video, PreviewedVideo) else None
        self._parts = [c for c in (camera, self.preview, view) if c is not None]
        super().__init__(children=self._parts)
        self.view, self.pipeline, self.camera, self.video = view, pipeline, camera, video
        view.link = view.model_id
        self._links = []
        for boxes in (camera, self.preview):  # boxes on the picture: the tiles' names and colours, and hovering
            if boxes is not None:
                boxes.set_trait("label_ids", True)
                boxes.link = view.model_id
                self._links.append(traitlets.dlink((view, "names"), (boxes, "names")))
        self.adapters = ClassAdapters(pipeline, on_change=self._show_adapters)
        """The class's adapters by name (:class:`~emowidgets.classadapters.ClassAdapters`), following the names."""
        view.observe(self._names_changed, "names")
        self.adapters.resolve(view.names)
        self.panel: CalibrationWidget | None = None
        self._panel_box: ipywidgets.VBox | None = None
        view.on_calibrate = self._calibrate_clicked
        view.observe(self._grid_changed, "grid")
        self._stop = threading.Event()
        self._closed = False
        if camera is not None:
            view.status = camera.status
        self.session = Session(pipeline, camera or video, on_status=self._status)
        pipeline.add_listener(view.update, slot="classview")
        if self.preview is not None and isinstance(video, PreviewedVideo):
            video.on_frame = self.preview.hold
            pipeline.add_listener(self.preview.show_result, slot="preview")
        self.running = Running()
        """This view's mark among the views running on this computer (:class:`~emowidgets.startup.Running`)."""
        self.session.start()
        self._tick_thread = threading.Thread(target=self._tick, name="emowidgets-classroom-tick", daemon=True)
        self._tick_thread.start()

    def _names_changed(self, change: dict[str, Any]) -> None:
        self.adapters.resolve(change["new"])

    def _show_adapters(self, adapted: dict[str, list[str]], room_labels: list[str]) -> None:
        """Which tiles have an adapter of their own, and the room adapter's labels, shown in the view."""
        with self.view.hold_sync():
            self.view.adapted, self.view.room_labels = adapted, room_labels

    def _status(self, status: str) -> None:
        if status == "video ended" and not self.view.saw_faces:
            status = NO_FACES_ENDED
        self.view.status = status

    def _grid_changed(self, change: dict[str, Any]) -> None:
        """The teacher's gallery-grid choice (already checked by the view) goes to the pipeline."""
        if change["new"] == change["old"]:  # a refused choice from the page notifies "unchanged"
            return
        try:
            self.pipeline.grid = change["new"]
        except OptionsError as exc:
            self.view.notice = str(exc)

    def feed(self, result: FrameResult) -> None:
        """Deprecated: show one result in the view and the open calibration panel (any thread). Every source's
        results reach both by themselves, as the pipeline's listeners."""
        warnings.warn("Classroom.feed(result) is deprecated: the view and the calibration panel listen to the "
                      "pipeline themselves", DeprecationWarning, stacklevel=2)
        self.view.update(result)
        panel = self.panel
        if panel is not None:
            panel.on_result(result)

    def calibrate(self, name: str, labels: tuple[str, ...] = ("happy", "neutral", "confused")
                  ) -> CalibrationWidget:
        """Open a calibration panel for the student named ``name``: shots are the face(s) of the tile(s) with
        that name, and Apply gives that name its own adapter (see :class:`ClassAdapters`).

        Raises:
            OptionsError: no tile has that name.
        """
        if not self.adapters.ids_of(name):
            raise OptionsError(f"no tile is named {name!r}: click a tile's #id and type the name first")

        def pick(result: FrameResult) -> np.ndarray:
            return np.flatnonzero(np.isin(result.track_ids, self.adapters.ids_of(name)))

        def install(adapter: Adapter | None) -> None:
            self.adapters.set_person(name, adapter)

        return self._open(ShotSource(pick, install, name), labels, f"Calibrating {name}")

    def calibrate_room(self, labels: tuple[str, ...] = ("happy", "neutral", "confused")) -> CalibrationWidget:
        """Open a calibration panel for the room: shots are every face in view, Apply sets the room adapter
        (used for every face without one of its own)."""
        return self._open(ShotSource(_every_face, self.adapters.set_room), labels,
                          "Calibrating the room (shots: every face in view)")

    def _open(self, source: ShotSource, labels: tuple[str, ...], title: str) -> CalibrationWidget:
        self.close_calibration()
        panel = CalibrationWidget(self.pipeline, labels, source=source, title=title)
        done = ipywidgets.Button(description="Close panel")
        done.add_class("emow-cv-calib-close")
        done.on_click(lambda _: self.close_calibration())
        self._panel_box = ipywidgets.VBox([panel, done])
        self.panel = panel
        self.children = [*self._parts, self._panel_box]
        return panel

    def close_calibration(self) -> None:
        """Close the calibration panel (an applied adapter stays in use)."""
        panel, box = self.panel, self._panel_box
        self.panel = self._panel_box = None
        self.children = self._parts
        if panel is not None and box is not None:
            panel.close()
            box.close()

    def _calibrate_clicked(self, track_id: int | None) -> None:
        """A tile's (or the room's) calibrate button; a refusal is shown in the view instead of raised."""
        try:
            if track_id is None:
                self.calibrate_room()
            elif name := self.view.names.get(str(track_id)):
                self.calibrate(name)
            else:
                raise OptionsError(f"name tile #{track_id} first (click its #id): adapters are kept by name")
            self.view.notice = ""
        except EmowidgetsError as exc:
            self.view.notice = str(exc)

    def save_adapters(self, folder: str | Path) -> Path:
        """Write every adapter (by name, and the room's) to ``folder``; see :meth:`ClassAdapters.save`."""
        return self.adapters.save(folder)

    def load_adapters(self, folder: str | Path) -> list[str]:
        """Use the adapters saved in ``folder`` instead of the current ones; see :meth:`ClassAdapters.load`."""
        return self.adapters.load(folder)

    def _tick(self) -> None:
        for tick in itertools.count():
            if tick % 5 == 0:
                self._warn_others()
            if self._stop.wait(1.0):
                return
            self.view.refresh()

    def _warn_others(self) -> None:
        """Say in the view when other views run on this computer."""
        self.view.others = others_text(self.running.others())

    def _display_(self) -> Any:
        """How marimo shows the room: the camera or video preview above the class view (the per-student
        calibration panel, an ipywidgets box, does not show there)."""
        return marimo_parts(list(self._parts), across=False)

    def close(self, _finalizing: Callable[[], bool] = sys.is_finalizing) -> None:
        """Stop the source, the pipeline and the widgets; again is a no-op, and so is a call at interpreter exit
        (ipywidgets' ``__del__``; see :meth:`~emowidgets.liveview.LiveView.close`)."""
        if getattr(self, "_closed", True) or _finalizing():
            return
        self._closed = True
        self._stop.set()
        self.close_calibration()
        if self._tick_thread is not threading.current_thread():
            self._tick_thread.join(5.0)
        self.session.close()
        self.running.close()
        while self._links:  # unlinked once (a second unlink raised ValueError)
            self._links.pop().unlink()
        if self.preview is not None:
            self.preview.close()
        self.view.close()
        super().close()


def classroom(source: str | Path | MediaStream = "screen", model: str | None = None, *,
              detector: str | None = None, log_path: str | Path | None = None, auto_calibrate: bool = True,
              read_names: bool | None = None, preset: str | None = None, **camera_options: Any) -> Classroom:
    """Watch a class: ``"screen"`` (share the video-call gallery window), ``"camera"``, an ipywebrtc stream,
    or a video file path.

    Args:
        source: ``"screen"``, ``"camera"``, an ipywebrtc ``MediaStream`` or the path of a video file.
        model: classifier, ``"main"`` or ``"fast"``; default ``"main"`` for a camera, ``"fast"`` otherwise
            (25 faces per frame cost about half as much).
        detector: ``"short"`` (one short-range pass: a camera), ``"full"`` (small, distant faces) or
            ``"gallery"`` (each call tile searched on its own, for up to ~36 small faces); default ``"short"``
            for a camera, ``"gallery"`` otherwise. The same knob as ``live()``'s
            (:func:`~emowidgets.sources.entry_options`).
        log_path: where logging (switched on in the view) writes; default ``class_log_<time>.parquet``.
        auto_calibrate: auto-calibrate each face: centre every student on their own resting face, learned
            from their first frames without labels (:mod:`emowidgets.autocalib`); "needs attention" reads the
            uncalibrated scores either way. ``False`` scores every face with the base model alone.
        read_names: name each student after the name their call tile shows, unless the teacher typed one
            (OCR on a thread of its own, :mod:`emowidgets.names`; the optional ``names`` extra, without which
            one log line says how to install it); default on for every source but ``"camera"``.
        preset: deprecated: ``"camera"`` is ``detector="short"``, ``"gallery"`` is ``detector="gallery"``.
        **camera_options: :class:`~emowidgets.widgets.CameraWidget` traits (``width``, ``height``, ...) of a
            browser source; a video file takes none.

    Raises:
        OptionsError: a source, detector, model name or camera option (name or value) that is not allowed,
            checked before the model loads or any thread starts.
        VideoFileError: a video path that is missing or not a video.
        ModelFileError: a weights file that is missing or unusable.
    """
    source = check_source(source, ("screen", "camera"), files=True)
    if isinstance(source, Path):
        check_camera_options(camera_options, (), "classroom() with a video file")
    else:
        check_camera_options(camera_options, BROWSER_OPTIONS, "classroom() with a browser source")
        check_camera_settings(camera_options)
    if preset is not None:
        warnings.warn("classroom(preset=...) is deprecated: use detector='short' (for preset='camera') or "
                      "detector='gallery'", DeprecationWarning, stacklevel=2)
        if detector is not None:
            raise OptionsError("give detector= only (preset= is its deprecated name), not both")
        if preset not in PRESETS:
            raise OptionsError(f"preset must be 'camera' or 'gallery' (deprecated: use detector='short' or "
                               f"'gallery'), not {preset!r}")
        detector = PRESETS[preset]
    is_camera = source == "camera"
    options = entry_options(detector or ("short" if is_camera else "gallery"),
                            model or ("main" if is_camera else "fast"), auto_calibrate=auto_calibrate)
    options = dataclasses.replace(options, read_names=not is_camera if read_names is None else bool(read_names))
    video = PreviewedVideo(source, realtime=True) if isinstance(source, Path) else None
    pipeline = start_pipeline(options)
    try:
        view = ClassView(log_path=str(log_path or ""))
        camera = None if video is not None else CameraWidget(source, pipeline=pipeline, **camera_options)
        return Classroom(view, pipeline, camera=camera, video=video)
    except BaseException:
        pipeline.close()
        raise
