"""Exception tree: catch :class:`EmowidgetsError`; code raises the specific leaves, chaining the cause.

    EmowidgetsError
    ├── OptionsError        an argument or option value that is not allowed (ValueError)
    ├── ClosedError         a pipeline or class log used after close() (RuntimeError)
    ├── BusyError           a source asked to run while it already runs (RuntimeError)
    ├── ModelFileError      a weight or adapter file that is missing, corrupt or for another backbone (ValueError)
    ├── DataFileError       a data file or class log that is missing, malformed or empty (ValueError)
    ├── FrameError          a frame that cannot be decoded (ValueError; the live loop counts and skips these)
    ├── AdapterError        shots or labels that cannot make an adapter (ValueError)
    ├── NoFaceError         an operation that needs a face got none
    ├── VideoFileError      a video file that is missing, unreadable or has no video stream (ValueError)
    └── CameraError         a camera the kernel cannot open

The leaves also derive from the built-in error they replace, so ``except ValueError`` written before this
tree still works. The command line maps them to one-line messages and exit codes (see :mod:`emowidgets.tools.cli`).
"""


class EmowidgetsError(Exception):
    """Base of every error this package raises on purpose."""


class OptionsError(EmowidgetsError, ValueError):
    """An argument or option is not one of the allowed values; the message lists them."""


class ClosedError(EmowidgetsError, RuntimeError):
    """The object was closed; make a new one (a closed pipeline's detector is released)."""


class BusyError(EmowidgetsError, RuntimeError):
    """The object is already doing what was asked (a frame source's ``run`` while it runs)."""


class ModelFileError(EmowidgetsError, ValueError):
    """A model or adapter file cannot be used; the message says why."""


class DataFileError(EmowidgetsError, ValueError):
    """A data file (``.npz``, class log) is missing, has wrong keys, shapes or values, or holds nothing."""


class FrameError(EmowidgetsError, ValueError):
    """A frame could not be decoded or has an unusable size or format."""


class AdapterError(EmowidgetsError, ValueError):
    """Shots, labels or settings from which no adapter can be fitted (or nothing fitted yet to apply)."""


class NoFaceError(EmowidgetsError):
    """No face was found where one is needed (for example a calibration capture)."""


class VideoFileError(EmowidgetsError, ValueError):
    """A video file is missing, unreadable or has no video stream."""


class CameraError(EmowidgetsError):
    """A camera read in the kernel cannot be opened; the message says what to check."""
