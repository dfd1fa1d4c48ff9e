"""Domain errors. The service maps each to an HTTP status in one handler; the CLI prints them."""


class MoodspaceError(Exception):
    """Base class for errors caused by the input, not by a bug."""


class ManifestError(MoodspaceError):
    """A labelled-clip manifest is malformed or points at missing files."""


class CurveError(MoodspaceError):
    """A valence/arousal curve is empty, non-finite or outside [-1, 1]."""


class AudioError(MoodspaceError):
    """Audio is empty, non-finite or cannot be decoded."""


class UndecodableAudioError(AudioError):
    """The bytes are not audio any installed decoder reads (the service answers 415)."""


class DatasetLayoutError(MoodspaceError):
    """A data set folder does not have the published layout."""


class OutputExistsError(MoodspaceError):
    """An output path exists and overwriting was not asked for."""


class MidiError(MoodspaceError):
    """A MIDI file is missing, corrupt or holds no notes."""


class RendererUnavailableError(MoodspaceError):
    """A renderer needs a program or file that is not installed."""


class QueryError(MoodspaceError):
    """A query names something unknown or asks for something impossible."""
