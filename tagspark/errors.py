"""Named errors. The library raises them; only the CLI turns them into ``Error: ...``."""

from __future__ import annotations


class TagsparkError(Exception):
    """Base class: a mistake the user can fix; the message says what and how."""


class ConfigError(TagsparkError):
    """A config key or value is wrong."""


class InputError(TagsparkError):
    """An input path is missing, unreadable, or of an unknown or mixed format."""


class OutputError(TagsparkError):
    """The output directory exists (without --overwrite) or cannot be written."""


class EmptyCorpusError(TagsparkError):
    """No post with at least one tag was left after reading and normalising."""


class ParameterError(TagsparkError):
    """A parameter is out of range for this corpus (e.g. k above the distinct tag sets)."""


class ResourceError(TagsparkError):
    """The environment failed the job: memory, disk, or a JVM or worker that died. The
    message names the stage and what to change."""
