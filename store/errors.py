"""Domainsmith's exception hierarchy.

Every error a user can cause (a bad file, a wrong setting, a missing model) is a
``DomainsmithError`` whose message a domain expert understands. The edges translate them:
the CLI prints the message and exits non-zero, the UI shows it. Nothing below the edges
catches them to print.
"""

from __future__ import annotations

from pathlib import Path


class Cancelled(Exception):
    """Work stopped because its caller asked (a closed ingestion): not a problem of the input."""


class DomainsmithError(Exception):
    """Base class: a problem the user can understand and act on."""

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None):
        self.message = message
        self.path = str(path) if path is not None else None
        self.line = line
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = ""
        if self.path:
            where = self.path + (f", line {self.line}" if self.line is not None else "") + ": "
        return where + self.message


class ConfigError(DomainsmithError):
    """A setting or config file is invalid."""


class UnsupportedFile(DomainsmithError):
    """The file type is not one the knowledge base can read."""


class CorruptDocument(DomainsmithError):
    """The file claims a format but cannot be read as it (truncated, damaged, not what its name says)."""


class EncryptedDocument(CorruptDocument):
    """The file is password-protected."""


class EmptyDocument(DomainsmithError):
    """The file holds no text to index (empty, or a scanned PDF without a text layer)."""


class FileTooLarge(DomainsmithError):
    """The file is over a configured size limit (or expands beyond one, like a zip bomb)."""


class KnowledgeBaseError(DomainsmithError):
    """A knowledge-base operation cannot be done as asked."""


class DocumentNotFound(KnowledgeBaseError):
    """No document with that id in the knowledge base."""


class EmbedderMismatch(KnowledgeBaseError):
    """The knowledge base was built with another embedding model than the one configured."""


class ModelNotFound(DomainsmithError):
    """A model path or name that does not exist, or is not a usable model file."""


class InvalidTrainingData(DomainsmithError):
    """A training file that cannot be used as it is."""


class RemoteModelError(DomainsmithError):
    """The remote model server (``remote_url``) could not be reached or did not answer properly."""


class RemoteTimeout(RemoteModelError):
    """The remote model server took longer than ``remote_timeout`` to connect or to send the next token."""
