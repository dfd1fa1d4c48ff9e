"""The ``moodspace`` command: the service commands (``app.cli``) and the training and data commands
(``training.cli``) mounted as one typer app.

Sub-apps are imported when one of their commands runs, service first: ``moodspace serve`` never imports
``training/`` (nor torch's training code paths), and ``moodspace --help`` lists both. Every domain error and every
usage error (a wrong flag value, a missing file) ends as one line on stderr and exit status 2, not a traceback.
"""

from __future__ import annotations

import importlib
import logging
import sys
from functools import cache

import typer
from typer._click import Command, Context  # typer's own click, which its apps are built on
from typer._click import exceptions as click_errors
from typer.core import TyperGroup

from models.errors import MoodspaceError

SUB_APPS = ("app.cli", "training.cli")  # modules with a ``cli`` typer app; the service's first
OWN_PACKAGES = ("app", "models", "training")


@cache
def sub_app(module: str) -> TyperGroup:
    group = typer.main.get_command(importlib.import_module(module).cli)
    assert isinstance(group, TyperGroup), f"{module}.cli must have several commands"
    return group


class Commands(TyperGroup):
    """The commands of every sub-app, loaded on first use."""

    def list_commands(self, ctx: Context) -> list[str]:
        return [name for module in SUB_APPS for name in sub_app(module).list_commands(ctx)]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        for module in SUB_APPS:
            command = sub_app(module).get_command(ctx, cmd_name)
            if command is not None:
                return command
        return None


cli = typer.Typer(cls=Commands, no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)


@cli.callback()
def moodspace() -> None:
    """moodspace: match music to emotion and to stories."""


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for package in OWN_PACKAGES:  # the project's own progress messages; libraries only warn
        logging.getLogger(package).setLevel(logging.INFO)
    command = typer.main.get_command(cli)
    try:
        code = command.main(args=argv, prog_name="moodspace", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as error:
        typer.echo(error.ctx.get_help() if error.ctx else "", err=True)
        sys.exit(2)
    except click_errors.UsageError as error:
        _fail(error.format_message(), command_hint=error.ctx.command_path if error.ctx else "moodspace")
    except click_errors.ClickException as error:
        _fail(error.format_message(), command_hint="moodspace")
    except typer.Abort:
        _fail("aborted", command_hint="")
    except MoodspaceError as error:
        _fail(str(error), command_hint="")
    sys.exit(code if isinstance(code, int) else 0)


def _fail(message: str, *, command_hint: str) -> None:
    """One line naming the problem (and where to read the usage), exit status 2."""
    hint = f" (see `{command_hint} --help`)" if command_hint else ""
    typer.echo(f"error: {message}{hint}", err=True)
    sys.exit(2)


if __name__ == "__main__":
    main()
