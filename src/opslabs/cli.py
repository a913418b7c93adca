"""Command line: parses arguments, calls the modules, maps errors to exit codes."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from opslabs.errors import OpslabsError, UserError

LABS_DIR = Path("labs")
EXAMPLES = {}


def _fail(message: str, code: int = 1) -> None:
    click.secho(message, fg="red", err=True)
    sys.exit(code)


class Group(click.Group):
    """Turns every OpslabsError into a message and an exit code, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UserError as err:
            _fail(str(err), 1)
        except OpslabsError as err:
            _fail(f"error: {err}", 2)
        except KeyboardInterrupt:
            _fail("interrupted", 130)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except Exception as err:  # a bug: say so briefly; OPSLABS_DEBUG=1 shows the traceback
            if os.environ.get("OPSLABS_DEBUG"):
                raise
            _fail(f"internal error: {type(err).__name__}: {err} (set OPSLABS_DEBUG=1 for details)", 3)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--labs", "labs_dir", type=click.Path(path_type=Path), default=LABS_DIR, show_default=True, help="The knowledge base folder.")
@click.version_option(package_name="opslabs")
@click.pass_context
def main(ctx: click.Context, labs_dir: Path) -> None:
    """opslabs: a DevOps knowledge base, training site and lab runner.

    \b
    Examples:
      opslabs validate            check every YAML file
      opslabs render              write the site's Markdown into docs/
      opslabs verify -j 2         run every lab in fresh containers
    """
    ctx.obj = labs_dir


def _catalog(ctx: click.Context):
    from opslabs.load import load_catalog

    return load_catalog(ctx.obj)


@main.command()
@click.pass_context
def validate(ctx: click.Context) -> None:
    """Check every area and task file; report all problems at once.

    \b
    Example:
      opslabs validate && echo "all good"
    """
    catalog = _catalog(ctx)
    click.echo(f"{len(catalog.areas)} areas, {len(catalog.tasks())} tasks, {len(catalog.labs())} labs: valid")
