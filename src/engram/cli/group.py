"""How the ``engram`` command reports failures: one line on stderr (a JSON document with ``--json``)
and an exit code per kind of failure, for every command, including those added later."""

from __future__ import annotations

import errno
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer
from typer.core import TyperCommand, TyperGroup

from engram.errors import (
    AuthenticationError,
    ConfigurationError,
    EngramError,
    NotFoundError,
    PermissionDeniedError,
    StorageError,
    ValidationError,
)

if TYPE_CHECKING:  # typer ships its own copy of click; these are its types
    from typer._click import Command, Context

EXIT_USAGE = 2
"""Bad usage or input: an unknown option, invalid JSON, a missing scope, a ``--db`` that names no store."""
EXIT_NOT_FOUND = 3
"""The memory, key or other object named by id does not exist."""
EXIT_FAILURE = 4
"""The store, the file system, the embedder or the LLM failed."""

_JSON_ERRORS = "engram.json_errors"
_USAGE_ERRORS = (ValidationError, ConfigurationError, PermissionDeniedError, AuthenticationError)


def exit_code_of(error: EngramError) -> int:
    """The exit code for ``error``: not found 3, bad usage or input 2, anything else failed 4."""
    if isinstance(error, NotFoundError):
        return EXIT_NOT_FOUND
    return EXIT_USAGE if isinstance(error, _USAGE_ERRORS) else EXIT_FAILURE


def as_engram_error(error: OSError) -> StorageError:
    """A file-system error (a path under a file, a missing folder, no permission) as a StorageError."""
    where = f": {error.filename}" if error.filename else ""
    return StorageError(f"{error.strerror or error}{where}", hint="check the path and its permissions")


def _usage_field(error: typer.TyperException) -> str | None:
    param = getattr(error, "param", None)
    opts = getattr(param, "opts", None)
    return str(opts[0]) if opts else getattr(param, "name", None)


def report(error: EngramError, *, as_json: bool) -> None:
    """Write ``error`` to stderr: ``error: <field>: <message> (<hint>)`` or, with ``--json``,
    ``{"error": {"type", "message", "field"}}`` (the hint is part of the message)."""
    if as_json:
        message = f"{error.message} ({error.hint})" if error.hint else error.message
        document: dict[str, Any] = {"error": {"type": type(error).__name__, "message": message,
                                              "field": error.field}}
        typer.echo(json.dumps(document, ensure_ascii=False), err=True)
    else:
        typer.echo(typer.style("error", fg="red", bold=True) + f": {error}", err=True)


class LazyCommand(TyperCommand):
    """A command listed in ``--help`` whose module is imported only when the command runs
    (for commands whose imports are heavy, such as the benchmarks)."""

    def __init__(self, name: str, load: Callable[[], Command], *, help: str) -> None:
        super().__init__(name, help=help)
        self._load = load

    def make_context(self, info_name: str | None, args: list[str], parent: Context | None = None,
                     **extra: Any) -> Context:
        return self._load().make_context(info_name, args, parent=parent, **extra)


LAZY_COMMANDS: list[LazyCommand] = []
"""Commands the top-level group adds as ``LazyCommand`` (see ``engram.cli``)."""


class EngramGroup(TyperGroup):
    """The top-level command group: Engram errors and file-system errors raised by any command
    become one reported line and an exit code (see ``exit_code_of``); usage errors too with ``--json``.
    The commands in ``LAZY_COMMANDS`` are added without importing them."""

    def __init__(self, **attributes: Any) -> None:
        super().__init__(**attributes)
        for command in LAZY_COMMANDS:
            if command.name not in self.commands:
                self.add_command(command)

    def make_context(self, info_name: str | None, args: list[str], parent: Context | None = None,
                     **extra: Any) -> Context:
        wants_json = "--json" in args
        context = super().make_context(info_name, args, parent=parent, **extra)
        context.meta[_JSON_ERRORS] = wants_json
        return context

    def invoke(self, ctx: Context) -> Any:
        as_json = bool(ctx.meta.get(_JSON_ERRORS))
        try:
            return super().invoke(ctx)
        except typer.TyperException as error:  # click's usage errors (bad options, missing arguments)
            if not as_json:
                raise
            report(ValidationError(error.format_message(), field=_usage_field(error)), as_json=True)
            raise typer.Exit(getattr(error, "exit_code", EXIT_USAGE)) from None
        except EngramError as error:
            report(error, as_json=as_json)
            raise typer.Exit(exit_code_of(error)) from None
        except OSError as error:
            if error.errno == errno.EPIPE:
                raise
            report(as_engram_error(error), as_json=as_json)
            raise typer.Exit(EXIT_FAILURE) from None

