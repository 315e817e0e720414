"""Adapters of a class: one per student, kept under the name the teacher gave the tile, and one for the room.

Track ids change (a new id after a long absence, or a student named on another tile), names do not, so
adapters are kept by name. :meth:`ClassAdapters.resolve` turns name -> adapter and the tiles' names
(track id -> name) into the pipeline's head, an :class:`~emowidgets.adapter.AdapterSet` (a face's own
adapter, else the room's, else the base model); it runs whenever the names change, so an adapter follows
its student to every tile that carries their name.

Files (:meth:`ClassAdapters.save`): one safetensors adapter per name (:func:`~emowidgets.adapter_io.save_adapter`)
under a file name made from the name plus a hash, ``room.safetensors``, and ``index.json`` mapping the real
names to those files. Loading checks the index and every file before replacing anything. No pickle.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from emowidgets.adapter import Adapter, AdapterSet
from emowidgets.adapter_io import load_adapter, save_adapter
from emowidgets.errors import ModelFileError, OptionsError
from emowidgets.modelfile import write_atomically
from emowidgets.pipeline import Pipeline

INDEX = "index.json"
INDEX_FORMAT = "emowidgets-class-adapters"
INDEX_VERSION = 1
MAX_INDEX_BYTES = 256 * 1024


def adapter_file_name(name: str) -> str:
    """A safe, distinct file name for a student's name: lower-case letters and digits of the name, then a
    hash of the whole name (two names that look alike after cleaning still get different files)."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40] or "student"
    return f"person-{slug}-{hashlib.sha256(name.encode()).hexdigest()[:10]}.safetensors"


class ClassAdapters:
    """Name -> adapter for the students of a class, plus a room adapter.

    It owns ``pipeline.head`` (None while there is no adapter, so the base model runs unchanged) and keeps it in
    step with the adapters and the tiles' names, ``names`` (track id -> name, as a
    :class:`~emowidgets.classview.ClassView`'s ``names``; given to :meth:`resolve` whenever they change).
    ``on_change(adapted, room_labels)`` hears the outcome of every change: track id -> the labels of that face's
    own adapter, and the room adapter's labels (a view shows them; :class:`~emowidgets.lesson.Classroom` wires it).
    """

    def __init__(self, pipeline: Pipeline,
                 on_change: Callable[[dict[str, list[str]], list[str]], None] | None = None) -> None:
        self.pipeline = pipeline
        self.on_change = on_change
        self.names: dict[str, str] = {}
        self.people: dict[str, Adapter] = {}
        self.room: Adapter | None = None
        self._lock = threading.Lock()

    def ids_of(self, name: str) -> list[int]:
        """Track ids of the tiles named ``name`` (usually one; an old and a new id while both are listed)."""
        return sorted(int(tid) for tid, given in self.names.items() if given == name)

    def set_person(self, name: str, adapter: Adapter | None) -> None:
        """Give the student ``name`` their own adapter (None removes it) and apply it to their tiles."""
        if not name.strip():
            raise OptionsError("a student's adapter needs a name")
        with self._lock:
            if adapter is None:
                self.people.pop(name, None)
            else:
                self.people[name] = adapter
        self.resolve()

    def set_room(self, adapter: Adapter | None) -> None:
        """Set the room adapter, used for every face without its own (None: the base model)."""
        with self._lock:
            self.room = adapter
        self.resolve()

    def resolve(self, names: Mapping[str, str] | None = None) -> None:
        """Rebuild the pipeline's head from name -> adapter and track id -> name (``names``, when given,
        replaces :attr:`names`), then tell ``on_change``."""
        with self._lock:
            if names is not None:
                self.names = dict(names)
            people = {int(tid): self.people[name] for tid, name in self.names.items() if name in self.people}
            head = AdapterSet(self.room, people) if self.room is not None or people else None
            self.pipeline.head = head  # one assignment: the worker reads the old or the new head, never half
            if self.on_change is not None:
                self.on_change({str(tid): list(a.labels) for tid, a in sorted(people.items())},
                               list(self.room.labels) if self.room is not None else [])

    def save(self, folder: str | Path) -> Path:
        """Write every adapter to ``folder`` (created if needed); returns the index file's path.

        ``index.json`` holds the students' names: it is personal data, keep the folder like the class log.
        Files of names no longer here are left in the folder but are not in the index, so they are not loaded.

        Raises:
            ModelFileError: an adapter or an index that :meth:`load` would refuse (nothing unloadable is written).
            OSError: the folder or a file cannot be written (each file is written under a temporary name and
                renamed: a failed write leaves the file as it was, and the index is written last).
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with self._lock:
            people, room = dict(self.people), self.room
        files = {name: adapter_file_name(name) for name in people}
        for name, file in files.items():
            save_adapter(people[name], folder / file)
        if room is not None:
            save_adapter(room, folder / "room.safetensors")
        index = {"format": INDEX_FORMAT, "format_version": INDEX_VERSION,
                 "room": "room.safetensors" if room is not None else None, "people": files}
        text = json.dumps(index, indent=1, ensure_ascii=False)
        if len(text.encode()) > MAX_INDEX_BYTES:
            raise ModelFileError(f"the names of {len(files)} students make an index over {MAX_INDEX_BYTES} bytes, "
                                 "which could not be loaded back: shorten the names")
        write_atomically(folder / INDEX, text.encode(), "adapter index")
        return folder / INDEX

    def load(self, folder: str | Path) -> list[str]:
        """Use the adapters saved in ``folder`` instead of the current ones; returns the students' names.

        Raises:
            ModelFileError: no or a bad ``index.json``, a file linked from outside the folder, an entry naming a file
                outside the folder, or an adapter file :func:`~emowidgets.adapter_io.load_adapter` refuses
                (another backbone, corrupt, ...). Nothing is replaced then.
        """
        folder = Path(folder)
        index = _read_index(folder / INDEX)
        backbone = self.pipeline.classifier.backbone_id
        people = {name: load_adapter(_member(folder, file), backbone) for name, file in index["people"].items()}
        room = None if index["room"] is None else load_adapter(_member(folder, index["room"]), backbone)
        with self._lock:
            self.people, self.room = people, room
        self.resolve()
        return list(people)


def _read_index(path: Path) -> dict[str, Any]:
    """The index, checked: format, version, a name -> file table of strings and a room entry."""
    if not path.is_file():
        raise ModelFileError(f"{path} not found: not a folder written by save_adapters")
    if path.stat().st_size > MAX_INDEX_BYTES:
        raise ModelFileError(f"{path} is over {MAX_INDEX_BYTES} bytes: not an adapter index")
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ModelFileError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT:
        raise ModelFileError(f"{path} is not an emowidgets class adapter index (no format={INDEX_FORMAT!r})")
    if index.get("format_version") != INDEX_VERSION:
        raise ModelFileError(f"{path} has index version {index.get('format_version')!r}; this emowidgets reads "
                             f"version {INDEX_VERSION}: save the adapters again or upgrade emowidgets")
    people, room = index.get("people"), index.get("room")
    if not isinstance(people, dict) or not all(isinstance(k, str) and k.strip() and isinstance(v, str)
                                               for k, v in people.items()):
        raise ModelFileError(f"{path}: 'people' must map names to adapter file names")
    if room is not None and not isinstance(room, str):
        raise ModelFileError(f"{path}: 'room' must be a file name or null")
    return index


def _member(folder: Path, file: str) -> Path:
    """``folder / file`` for a plain ``.safetensors`` file name; anything pointing elsewhere is refused."""
    if Path(file).name != file or file.startswith(".") or not file.endswith(".safetensors"):
        raise ModelFileError(f"{folder / INDEX} names {file!r}: adapter entries must be .safetensors files "
                             "in the same folder")
    path = folder / file
    if path.is_symlink() and path.resolve().parent != folder.resolve():
        raise ModelFileError(f"{path} is a link to {path.resolve()}, outside the adapter folder: refused")
    return path
