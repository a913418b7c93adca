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
            _fail(f"internal error: {type(err).__name__}: {str(err)[:300]} (set OPSLABS_DEBUG=1 for details)", 3)


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


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("docs"), show_default=True, help="Where to write the Markdown.")
@click.option("--templates", type=click.Path(path_type=Path), default=Path("macros"), show_default=True)
@click.option("--results", type=click.Path(path_type=Path), default=None, help="Results JSON for the verified badges [default: .opslabs/results.json].")
@click.pass_context
def render(ctx: click.Context, out: Path, templates: Path, results: Path | None) -> None:
    """Render the knowledge base to Markdown, before any site generator runs.

    \b
    Example:
      opslabs render --out build/markdown
    """
    from opslabs.render import render as render_pages
    from opslabs.render import write_pages
    from opslabs.results import DEFAULT_RESULTS, read_results

    pages = render_pages(_catalog(ctx), templates, read_results(results or DEFAULT_RESULTS))
    written = write_pages(pages, out)
    click.echo(f"{len(pages)} pages rendered into {out}/ ({len(written)} changed)")


@main.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_labs(ctx: click.Context, as_json: bool) -> None:
    """List the labs.

    \b
    Example:
      opslabs list --json | jq -r '.[].id'
    """
    labs = [
        {"id": t.id, "area": t.area_id, "title": t.task.title, "level": t.task.level,
         "duration": t.task.lab.duration, "hosts": list(t.task.lab.hosts), "steps": len(t.task.lab.steps),
         "path": str(t.path)}
        for t in _catalog(ctx).labs()
    ]
    if as_json:
        click.echo(json.dumps(labs, indent=2))
        return
    for lab in labs:
        click.echo(f"{lab['id']:<36} {lab['area']:<20} {lab['level']:<13} {lab['duration']:>4}  {lab['title']}")


@main.command()
@click.argument("labs", nargs=-1)
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=1, show_default=True, help="Labs run in parallel.")
@click.option("--results", type=click.Path(path_type=Path), default=None, help="Write results JSON here [default: .opslabs/results.json].")
@click.option("--junit", type=click.Path(path_type=Path), default=None, help="Write a JUnit XML report here.")
@click.option("-q", "--quiet", is_flag=True)
@click.pass_context
def verify(ctx: click.Context, labs: tuple[str, ...], jobs: int, results: Path | None, junit: Path | None, quiet: bool) -> None:
    """Run labs in fresh containers and check them (all labs without LAB arguments).

    \b
    Examples:
      opslabs verify                          every lab, one at a time
      opslabs verify nginx-load-balancer -j 2 --results r.json
    """
    import pytest

    from opslabs import engine
    from opslabs.results import DEFAULT_RESULTS, read_results

    catalog = _catalog(ctx)
    known = {t.id: t for t in catalog.labs()}
    unknown = [lab for lab in labs if lab not in known]
    if unknown:
        raise UserError(f"unknown lab(s): {', '.join(unknown)}; `opslabs list` shows the labs")
    chosen = [known[lab] for lab in labs] if labs else list(known.values())
    if not chosen:
        raise UserError(f"no labs found under {ctx.obj}")
    engine.ensure_engine()
    results = results or DEFAULT_RESULTS
    args = [str(t.path) for t in chosen]
    args += ["--opslabs-results", str(results), "-o", "addopts=", "-o", "testpaths=",
             "--strict-markers", "-p", "no:cacheprovider", "-rfEs", "--tb=short"]
    args += ["-q"] if quiet else ["-v"]
    if jobs > 1 and len(chosen) > 1:
        args += ["-n", str(min(jobs, len(chosen))), "--dist", "loadfile"]
    if junit:
        args += ["--junit-xml", str(junit)]
    code = pytest.main(args)
    found = read_results(results)
    counts = {s: sum(1 for r in found.values() if r["status"] == s) for s in ("passed", "failed", "skipped")}
    click.echo(f"labs: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped  (results: {results})")
    if code not in (0, 5):
        sys.exit(1)


@main.command()
@click.option("--all", "everything", is_flag=True, help="Also remove running workshop labs and live runs.")
def gc(everything: bool) -> None:
    """Remove containers and networks that opslabs runs left behind (found by label).

    \b
    Example:
      opslabs gc            after a run was killed with kill -9
    """
    from opslabs import engine

    engine.ensure_engine()
    containers, networks = engine.collect_garbage(everything)
    click.echo(f"removed {len(containers)} container(s) and {len(networks)} network(s)")


@main.group()
def engine() -> None:
    """The Docker engine."""


@engine.command("ensure")
def engine_ensure() -> None:
    """Make sure a Docker engine answers; as root on Debian, install and start one.

    \b
    Example:
      sudo opslabs engine ensure
    """
    from opslabs import engine as docker_engine

    state = docker_engine.ensure_engine()
    click.echo(f"Docker engine {state}")


@main.group()
def images() -> None:
    """Base images for the labs."""


@images.command("ensure")
@click.argument("names", nargs=-1)
@click.pass_context
def images_ensure(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Make base images available: local, else pulled, else bootstrapped offline.

    \b
    Examples:
      opslabs images ensure                      every image the labs name
      opslabs images ensure debian:bookworm-slim
    """
    from opslabs import engine as docker_engine
    from opslabs import images as base_images

    if not names:
        names = tuple(sorted({h.image for t in _catalog(ctx).labs() for h in t.task.lab.hosts.values()} | {"debian:bookworm-slim"}))
    docker_engine.ensure_engine()
    for name in names:
        how = base_images.ensure_image(name)
        click.echo(f"{name}: {how}")


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("schema"), show_default=True)
def schema(out: Path) -> None:
    """Write JSON Schemas for area and task files (editors validate YAML while typing).

    \b
    Example:
      opslabs schema && ls schema/
    """
    from opslabs.schema import write_schemas

    for path in write_schemas(out):
        click.echo(f"wrote {path}")
