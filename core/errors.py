"""The errors letras shows to people.

Every mistake a user can make ends in one of these: one line that says what is wrong and
where, and an exit code (2 for a usage error, 1 for a failure). The CLI prints the message
without a traceback; ``--debug`` or ``LETRAS_DEBUG=1`` shows one.
"""

from __future__ import annotations


class LetrasError(Exception):
    """A failure the user can act on (a missing file, a damaged checkpoint). Exit code 1."""

    exit_code = 1

    def __init__(self, message: str, *, where: str | None = None, hint: str | None = None):
        self.message = message
        self.where = where
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class UsageError(LetrasError):
    """The user asked for something that cannot be: a bad config, an unknown name. Exit code 2."""

    exit_code = 2


class ConfigError(UsageError):
    """A pipeline config that does not parse or does not validate."""


class UnknownCharacters(UsageError):
    """A word holds characters the vocabulary never saw. A tokenizer raises it from
    ``encode``; ``chars`` are those characters (each once) and ``word`` is the word
    as the tokenizer normalised it, so that scoring can name them and go on with other words."""

    def __init__(self, message: str, *, chars: list[str], word: str, where: str | None = None,
                 hint: str | None = None):
        super().__init__(message, where=where, hint=hint)
        self.chars = chars
        self.word = word


class PluginError(LetrasError):
    """A plugin that failed to load, or a component that cannot be built."""


class Interrupted(LetrasError):
    """Training stopped on Ctrl-C or SIGTERM after saving a checkpoint. Exit code 128 + signal."""

    def __init__(self, message: str, signum: int):
        super().__init__(message)
        self.exit_code = 128 + signum
