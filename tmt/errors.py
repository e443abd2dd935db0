"""Error types that carry one clear, user-facing message (file and field named), raised before work starts."""


class TmtError(ValueError):
    """Base class for bad input: the message is meant for the user, a traceback is not."""


class DataError(TmtError):
    """A data file is missing, unreadable, or has the wrong keys, shapes or values."""


class ConfigError(TmtError):
    """A configuration is impossible (unknown name, incompatible sizes, out-of-range value)."""


class CheckpointError(TmtError):
    """A checkpoint that cannot be resumed: unreadable, or written for another configuration."""
