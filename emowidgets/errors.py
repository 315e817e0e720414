"""Exception tree: catch :class:`EmowidgetsError`; code raises the specific leaves.

    EmowidgetsError
    ├── ModelFileError      a weight or adapter file that is missing, corrupt or for another backbone
    ├── DataFileError       an evaluation/training data file that is malformed
    ├── FrameError          a frame that cannot be decoded (the live loop counts and skips these)
    ├── NoFaceError         an operation that needs a face got none
    ├── VideoFileError      a video file that is missing, unreadable or has no video stream
    └── CameraError         a camera the kernel cannot open
"""


class EmowidgetsError(Exception):
    """Base of every error this package raises on purpose."""


class ModelFileError(EmowidgetsError, ValueError):
    """A model or adapter file cannot be used; the message says why."""


class DataFileError(EmowidgetsError, ValueError):
    """A data file (``.npz``) is missing keys, has wrong shapes or labels out of range."""


class FrameError(EmowidgetsError, ValueError):
    """A frame could not be decoded or has an unusable size or format."""


class NoFaceError(EmowidgetsError):
    """No face was found where one is needed (for example a calibration capture)."""


class VideoFileError(EmowidgetsError, ValueError):
    """A video file is missing, unreadable or has no video stream."""


class CameraError(EmowidgetsError):
    """A camera read in the kernel cannot be opened; the message says what to check."""
