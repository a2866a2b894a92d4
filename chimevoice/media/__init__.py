"""Media: prompt files ("S3" buckets as local directories, WAV conversion) and signal analysis helpers."""

from .audio import (
    INVALID_AUDIO_SOURCE,
    MAX_AUDIO_BYTES,
    MSG_CANNOT_ACCESS,
    MSG_INVALID_AUDIO_SOURCE,
    AudioCache,
    AudioSourceError,
    PreparedAudio,
    audio_source_error_for,
    parse_audio_source,
    read_pcm,
)
from .storage import BucketStore, ObjectAccessError

__all__ = [
    "INVALID_AUDIO_SOURCE",
    "MAX_AUDIO_BYTES",
    "MSG_CANNOT_ACCESS",
    "MSG_INVALID_AUDIO_SOURCE",
    "AudioCache",
    "AudioSourceError",
    "BucketStore",
    "ObjectAccessError",
    "PreparedAudio",
    "audio_source_error_for",
    "parse_audio_source",
    "read_pcm",
]
