"""Command line: parses arguments, calls the modules, maps errors to exit codes."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click

from opslabs.errors import OpslabsError, UserError

LABS_DIR = Path("labs")


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


def _catalog(ctx: click.Context, policy=None):
    """The knowledge base; with a policy, every host is held to it (commands that start containers)."""
    from opslabs.load import load_catalog

    return load_catalog(ctx.obj, policy)


def _memory_size(ctx: click.Context, param: click.Parameter, value: str) -> str:
    from opslabs.policy import memory_bytes

    try:
        memory_bytes(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None
    return value.lower()


def policy_options(command):
    """The operator's limits for what a lab may ask (never set from a lab file): passed on as `policy`."""
    from functools import wraps

    from opslabs.policy import DEFAULT_MAX_MEMORY, DEFAULT_MAX_PIDS, Policy

    @wraps(command)
    def with_policy(*args, allow_privileged, allow_caps, max_memory, max_pids, **kwargs):
        policy = Policy(allow_privileged, frozenset(allow_caps), max_memory, max_pids)
        return command(*args, policy=policy, **kwargs)

    options = [
        click.option("--allow-privileged", is_flag=True, help="Let labs run privileged hosts (root on this machine)."),
        click.option("--allow-cap", "allow_caps", multiple=True, metavar="CAP", help="Let labs add this capability (repeatable; ALL for any)."),
        click.option("--max-memory", default=DEFAULT_MAX_MEMORY, show_default=True, callback=_memory_size, help="Most memory a lab host may ask for."),
        click.option("--max-pids", type=click.IntRange(64, 4194304), default=DEFAULT_MAX_PIDS, show_default=True, help="Most processes a lab host may ask for."),
    ]
    for option in reversed(options):
        with_policy = option(with_policy)
    return with_policy


@main.command()
@policy_options
@click.option("--no-blocks", "blocks", is_flag=True, flag_value=False, default=True, help="Skip the code-block checkers (YAML and model only).")
@click.pass_context
def validate(ctx: click.Context, policy, blocks: bool) -> None:
    """Check every area and task file and every code block of the guides; report all problems at once.

    \b
    Example:
      opslabs validate && echo "all good"
      opslabs validate --allow-cap SYS_PTRACE --max-memory 4g
    """
    from opslabs.blocks.report import check_and_report
    from opslabs.errors import ValidationFailed

    catalog = _catalog(ctx, policy)
    if blocks:
        report, problems = check_and_report(catalog)
        if problems:
            raise ValidationFailed(problems)
        total = report["coverage"]["total"]
        click.echo(f"{total['total']} code blocks: {total['executed']} executed by labs, {total['validated']} validated, "
                   f"{total['fragment']} fragments, {total['unchecked']} unchecked (opslabs coverage shows where)")
    click.echo(f"{len(catalog.areas)} areas, {len(catalog.tasks())} tasks, {len(catalog.labs())} labs: valid")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def pins(ctx: click.Context, as_json: bool) -> None:
    """Compare the package pins in the guides (pip, npm, apt) with what the registries serve.

    A pin the registry no longer serves fails (exit 1); a newer release is only reported; a
    registry that cannot be reached is skipped with the reason.

    \b
    Example:
      opslabs pins
    """
    from opslabs.blocks.extract import extract
    from opslabs.blocks.pins import check_pins, find_pins

    results = check_pins(find_pins(extract(_catalog(ctx))))
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        for r in results:
            if r.status != "current":
                colour = {"missing": "red", "newer": "yellow"}.get(r.status)
                click.secho(f"{r.pin.block.where}: {r.pin.spec}: {r.status}: {r.detail}", fg=colour, err=r.status == "missing")
        counts = {s: sum(1 for r in results if r.status == s) for s in ("current", "newer", "missing", "skipped")}
        click.echo(f"{len(results)} pins: {counts['current']} current, {counts['newer']} with a newer release, "
                   f"{counts['missing']} no longer served, {counts['skipped']} skipped")
    if any(r.status == "missing" for r in results):
        sys.exit(1)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Machine-readable: totals, per area, and every block that is not executed with the reason.")
@click.pass_context
def coverage(ctx: click.Context, as_json: bool) -> None:
    """How many code blocks of the guides are executed, validated, fragments or unchecked.

    Runs the block checkers (cached by content hash) and stores the report that the site shows.

    \b
    Examples:
      opslabs coverage
      opslabs coverage --json | jq '.total'
    """
    from opslabs.blocks.report import check_and_report
    from opslabs.errors import ValidationFailed

    report, problems = check_and_report(_catalog(ctx))
    table = report["coverage"]
    if as_json:
        click.echo(json.dumps({**table, "problems": [str(p) for p in problems]}, indent=2))
    else:
        header = f"{'area':<20} {'blocks':>6} {'executed':>8} {'validated':>9} {'fragment':>8} {'unchecked':>9} {'checked':>8} {'shell run':>9}"
        click.echo(header)
        for name, row in [*table["areas"].items(), ("TOTAL", table["total"])]:
            click.echo(f"{name:<20} {row['total']:>6} {row['executed']:>8} {row['validated']:>9} {row['fragment']:>8} "
                       f"{row['unchecked']:>9} {row['checked_percent']:>7}% {row['shell_executed_percent']:>8}%")
    if problems:
        raise ValidationFailed(problems)


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("docs"), show_default=True, help="Where to write the Markdown.")
@click.option("--templates", type=click.Path(path_type=Path), default=Path("macros"), show_default=True,
              help="Your templates: a file here replaces the built-in template of the same name.")
@click.option("--results", type=click.Path(path_type=Path), default=None, help="Results JSON for the verified badges [default: .opslabs/results.json].")
@click.pass_context
def render(ctx: click.Context, out: Path, templates: Path, results: Path | None) -> None:
    """Render the knowledge base to Markdown and the navigation, before any site generator runs.

    \b
    Example:
      opslabs render --out build/markdown
    """
    from opslabs.render import render as render_pages
    from opslabs.render import asset_pages, write_pages
    from opslabs.store.results import DEFAULT_RESULTS, publish_results, read_results

    from opslabs.blocks.report import read_report, report_path_for

    from opslabs.navigation import NAV_FILE, write_navigation

    catalog = _catalog(ctx)
    pages = render_pages(catalog, templates, read_results(results or DEFAULT_RESULTS), read_report(report_path_for(ctx.obj)))
    written = write_pages({**pages, **asset_pages()}, out)  # the stylesheet too, for Zensical
    publish_results(results or DEFAULT_RESULTS, out)  # the results travel with the site, whichever generator builds it
    nav_changed = write_navigation(catalog, out)  # for generators that run no plugin (Zensical)
    click.echo(f"{len(pages)} pages rendered into {out}/ ({len(written)} changed), navigation in {out / NAV_FILE}"
               f"{' (changed)' if nav_changed else ''}")


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


def _shard_option(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, int] | None:
    from opslabs.store.plan import parse_shard

    try:
        return None if value is None else parse_shard(value)
    except ValueError as err:
        raise click.BadParameter(str(err)) from None


@main.command()
@click.argument("labs", nargs=-1)
@click.option("-j", "--jobs", type=click.IntRange(1, 64), default=1, show_default=True, help="Labs run in parallel.")
@click.option("--results", type=click.Path(path_type=Path), default=None, help="Write results JSON here [default: .opslabs/results.json].")
@click.option("--junit", type=click.Path(path_type=Path), default=None, help="Write a JUnit XML report here.")
@click.option("-q", "--quiet", is_flag=True)
@click.option("--changed", is_flag=True, help="Run only labs whose content key has no passing result in the results file.")
@click.option("--shard", "shard_of", default=None, metavar="K/N", callback=_shard_option,
              help="Run share K of N, balanced by recorded durations (the same split on every machine).")
@click.option("--baseline", "baselines", multiple=True, metavar="URL|PATH",
              help="Merge this results file into --results first (a published site's opslabs-results.json); repeatable.")
@policy_options
@click.pass_context
def verify(ctx: click.Context, labs: tuple[str, ...], jobs: int, results: Path | None, junit: Path | None, quiet: bool,
           changed: bool, shard_of: tuple[int, int] | None, baselines: tuple[str, ...], policy) -> None:
    """Run labs in fresh containers and check them (all labs without LAB arguments).

    \b
    Examples:
      opslabs verify                          every lab, one at a time
      opslabs verify nginx-load-balancer -j 2 --results r.json
      opslabs verify --changed --baseline https://example.org/kb/opslabs-results.json
      opslabs verify --shard 2/4              the second quarter of the labs, by recorded time
    """
    import pytest

    from opslabs import engine
    from opslabs.store.results import DEFAULT_RESULTS, read_results

    catalog = _catalog(ctx, policy)
    known = {t.id: t for t in catalog.labs()}
    unknown = [lab for lab in labs if lab not in known]
    if unknown:
        raise UserError(f"unknown lab(s): {', '.join(unknown)}; `opslabs list` shows the labs")
    chosen = [known[lab] for lab in labs] if labs else list(known.values())
    if not chosen:
        raise UserError(f"no labs found under {ctx.obj}")
    results = results or DEFAULT_RESULTS
    chosen = _plan(catalog, chosen, results, changed, shard_of, baselines, jobs)
    if not chosen:
        click.echo("nothing to run: every selected lab has a passing result for its current content")
        return
    try:
        engine.ensure_engine()
    except UserError as err:  # every lab is then skipped with this reason, never passed
        click.secho(f"warning: {err}", fg="yellow", err=True)
    block_problems = _check_blocks(catalog, {t.path for t in chosen} if labs else None)
    args = [str(t.path) for t in chosen]
    args += ["--opslabs-labs", str(ctx.obj), "--opslabs-results", str(results), "-o", "addopts=", "-o", "testpaths=",
             "--strict-markers", "-p", "no:cacheprovider", "-rfEs", "--tb=short", *policy.pytest_args(),
             # testinfra (the checks' library) is imported before pytest could rewrite its asserts:
             # a warning about pytest's internals, not about the labs, printed on every run.
             "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    args += ["-q"] if quiet else ["-v"]
    if jobs > 1 and len(chosen) > 1:
        # One lab per file, run in the plan's order: xdist would otherwise reorder by step count.
        args += ["-n", str(min(jobs, len(chosen))), "--dist", "loadfile", "--no-loadscope-reorder"]
    if junit:
        args += ["--junit-xml", str(junit)]
    from contextlib import nullcontext

    from opslabs import live

    board = live.VerifyBoard({t.id: [s.title for s in t.task.lab.steps] for t in chosen}) if live.wanted() and not quiet else None
    with board or nullcontext():  # a terminal shows which lab, which step, how long; piped or CI: plain lines
        code = pytest.main(args, plugins=[board] if board else [])
    if code == pytest.ExitCode.INTERRUPTED:
        _fail("interrupted: the labs' containers were removed", 130)
    found = read_results(results)
    ran = [found[t.id] for t in chosen if t.id in found]
    counts = {s: sum(1 for r in ran if r["status"] == s) for s in ("passed", "failed", "skipped")}
    click.echo(f"labs: {counts['passed']} passed, {counts['failed']} failed, {counts['skipped']} skipped  (results: {results})")
    snippets = [s for r in ran for s in r.get("steps", [])]
    guide_blocks = sum(s.get("guide_blocks", 0) for s in snippets)
    if guide_blocks:
        seconds = sum(s.get("guide_seconds", 0.0) for s in snippets)
        click.echo(f"guide snippets: {guide_blocks} blocks run in the labs in {seconds:.1f} s (included in the labs' times above)")
    cpu = [r["cpu_seconds"] for r in ran if r.get("cpu_seconds") is not None]
    if cpu:  # how much of the run the labs computed rather than waited (per lab in the results)
        click.echo(f"lab hosts' CPU: {sum(cpu):.1f} s over {len(cpu)} lab(s)")
    if code != 0 or len(ran) != len(chosen) or block_problems:  # pytest's 5 (nothing collected) is a failure here
        sys.exit(1)


def _plan(catalog, chosen: list, results: Path, changed: bool, shard_of: tuple[int, int] | None, baselines: tuple[str, ...],
          jobs: int = 1) -> list:
    """The labs this run runs, in the order it runs them: the baselines merged in first, then one
    snapshot of the store decides which changed (--changed), which share is this one's (--shard)
    and, with more than one job, the order (longest first)."""
    from opslabs.store import plan
    from opslabs.store.keys import lab_key
    from opslabs.store.results import merge_sources, read_results

    for source, outcome in merge_sources(results, list(baselines)):
        if isinstance(outcome, str):  # a first run has no published results yet: everything runs
            click.secho(f"warning: baseline not used: {outcome}", fg="yellow", err=True)
        else:
            click.echo(f"baseline: {outcome} lab results from {source} merged into {results}")
    snapshot = read_results(results)
    if changed:
        keys = {entry.id: lab_key(entry, catalog.versions) for entry in chosen}
        runs = set(plan.changed(keys, snapshot))
        kept = [entry.id for entry in chosen if entry.id not in runs]
        named = f" ({', '.join(e.id for e in chosen if e.id in runs)})" if 0 < len(runs) <= 10 else ""
        click.echo(f"--changed: {len(runs)} of {len(chosen)} lab(s) to run{named}; {len(kept)} keep their passing result")
        chosen = [entry for entry in chosen if entry.id in runs]
    if shard_of:
        k, n = shard_of
        mine = set(plan.shard([entry.id for entry in chosen], snapshot, k, n))
        chosen = [entry for entry in chosen if entry.id in mine]
        seconds = plan.durations([entry.id for entry in chosen], snapshot)
        click.echo(f"--shard {k}/{n}: {len(chosen)} lab(s), about {sum(seconds.values()):.0f} s by recorded durations")
    if jobs > 1:  # the long labs start first, the short ones fill the gaps at the end
        steps = {entry.id: len(entry.task.lab.steps) for entry in chosen}
        position = {lab: i for i, lab in enumerate(plan.longest_first([entry.id for entry in chosen], snapshot, steps))}
        chosen = sorted(chosen, key=lambda entry: position[entry.id])
    return chosen


def _check_blocks(catalog, paths: set | None) -> list:
    """The code-block checkers (cached), as `validate` runs them; their report feeds the site.
    Returns the problems in the given files (all files when None), printed once here."""
    from opslabs.blocks.report import check_and_report

    report, problems = check_and_report(catalog)
    if paths is not None:
        problems = [p for p in problems if p.path in paths]
    for problem in problems:
        click.secho(str(problem), fg="red", err=True)
    total = report["coverage"]["total"]
    click.echo(f"code blocks: {total['executed']} executed by labs, {total['validated']} validated, "
               f"{total['fragment']} fragments, {total['unchecked']} unchecked, {len(problems)} problems")
    return problems


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


@main.group("results")
def results_group() -> None:
    """The results store: what each lab's last verification found, keyed by its content."""


@results_group.command("merge")
@click.argument("sources", nargs=-1, required=True, metavar="URL|PATH...")
@click.option("--results", type=click.Path(path_type=Path), default=None, help="The results file to merge into [default: .opslabs/results.json].")
def results_merge(sources: tuple[str, ...], results: Path | None) -> None:
    """Merge results files into the local one; per lab, the record verified last wins.

    A source is a path or an http(s) URL, such as the published site's opslabs-results.json
    (at the start of a CI run) or the files of the shards of a sharded run (before publishing).

    \b
    Examples:
      opslabs results merge https://example.org/kb/opslabs-results.json
      opslabs results merge shard-*/results.json --results .opslabs/results.json
    """
    from opslabs.store.results import DEFAULT_RESULTS, merge_sources

    results = results or DEFAULT_RESULTS
    failed = False
    for source, outcome in merge_sources(results, list(sources)):
        if isinstance(outcome, str):
            click.secho(f"error: {outcome}", fg="red", err=True)
            failed = True
        else:
            click.echo(f"{source}: {outcome} lab results merged into {results}")
    if failed:
        sys.exit(1)


@main.group("engine")
def engine_group() -> None:
    """The Docker engine."""


@engine_group.command("ensure")
def engine_ensure() -> None:
    """Make sure a Docker engine answers; as root on Debian, install and start one.

    \b
    Example:
      sudo opslabs engine ensure
    """
    from opslabs import engine

    state = engine.ensure_engine()
    click.echo(f"Docker engine {state}")


@main.group("images")
def images_group() -> None:
    """Base images for the labs."""


@images_group.command("ensure")
@click.argument("names", nargs=-1)
@click.pass_context
def images_ensure(ctx: click.Context, names: tuple[str, ...]) -> None:
    """Make base images available: local, else pulled, else bootstrapped offline.

    \b
    Examples:
      opslabs images ensure                      every image the labs name
      opslabs images ensure debian:bookworm-slim
    """
    from opslabs import engine
    from opslabs import images

    if not names:
        names = tuple(sorted({h.image for t in _catalog(ctx).labs() for h in t.task.lab.hosts.values()} | {"debian:bookworm-slim"}))
    from opslabs import live

    engine.ensure_engine()
    with live.Board("images ensure", total=len(names), plain_rows=False) as board:
        for name in names:
            board.begin(name, "looking for it on this machine")
            how = images.ensure_image(name)
            board.finish(name, how)
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


# --- workshop: what a learner types ---------------------------------------


def _lab(ctx: click.Context, lab_id: str, policy=None):
    entry = _catalog(ctx, policy).find_lab(lab_id)
    if entry is None:
        raise UserError(f"unknown lab {lab_id!r}; `opslabs list` shows the labs")
    return entry


def _say(message: str) -> None:
    click.secho(f"  … {message}", dim=True, err=True)


def _show_step(entry, number: int) -> None:
    step = entry.task.lab.steps[number - 1]
    click.secho(f"\nStep {number} of {len(entry.task.lab.steps)}: {step.title}", bold=True)
    if step.text.strip():
        click.echo(step.text.strip())


def _show_report(entry, report, progress) -> None:
    for check in report.checks:
        mark = click.style("✔ passed", fg="green") if check.passed else click.style("✘ failed", fg="red")
        click.echo(f"  {mark}  [{check.host}] {check.description}")
        if not check.passed:
            if check.message:
                click.echo(f"           {check.message}")
            if check.expected != check.description:
                click.echo(click.style(f"           expected: {check.expected}", dim=True))
            click.echo(click.style(f"           found:    {check.actual}", dim=True))
    step = entry.task.lab.steps[report.step - 1]
    if report.passed:
        click.secho(f"\nStep {report.step} done.", fg="green", bold=True)
        if progress.current is None:
            click.secho(f"Every step of {entry.id} is done. Well done! `opslabs stop {entry.id}` removes the lab.", fg="green")
        else:
            _show_step(entry, progress.current)
    else:
        click.secho(f"\nStep {report.step} is not done yet.", fg="yellow", bold=True)
        for hint in step.hints:
            click.echo(f"  hint: {hint.strip()}")
        click.echo(f"  Stuck? `opslabs solve {entry.id}` applies the reference solution.")


@main.command()
@click.argument("lab")
@click.option("--reset", is_flag=True, help="Remove the running lab and its progress first, then start afresh.")
@policy_options
@click.pass_context
def start(ctx: click.Context, lab: str, reset: bool, policy) -> None:
    """Start a lab: boot its hosts (from the setup cache) and show the first step.

    A lab whose host was removed or stopped is repaired: the host is recreated from its
    cached setup and the steps you finished are replayed on it; your progress is kept.

    \b
    Examples:
      opslabs start nginx-load-balancer
      opslabs start nginx-load-balancer --reset     start over
    """
    import time

    from opslabs import workshop

    entry = _lab(ctx, lab, policy)
    started = time.monotonic()
    from opslabs import live

    with live.Board("start", plain_rows=False):  # a first start builds setup layers: show their commands
        env, repaired = workshop.start(entry, _say, reset=reset)
    hosts = ", ".join(env.lab.hosts)
    if repaired:
        progress = workshop.load_progress(env)
        click.secho(f"Lab {entry.id} is repaired ({', '.join(repaired)} back, {len(progress.done)} finished step(s) kept), "
                    f"in {time.monotonic() - started:.1f} s.", fg="green", bold=True)
        if progress.current is not None:
            _show_step(entry, progress.current)
        return
    click.secho(f"Lab {entry.id} is running ({hosts}), started in {time.monotonic() - started:.1f} s.", fg="green", bold=True)
    click.echo("Objectives:")
    for objective in entry.task.lab.objectives:
        click.echo(f"  - {objective}")
    _show_step(entry, 1)
    click.echo(f"\nNext: `opslabs shell {entry.id}{' HOST' if len(env.lab.hosts) > 1 else ''}` to work, `opslabs check {entry.id}` when you think you are done.")


@main.command()
@click.argument("lab", required=False)
@click.argument("host", required=False)
@click.pass_context
def shell(ctx: click.Context, lab: str | None, host: str | None) -> None:
    """Open an interactive shell in a host of a running lab (bash where the image has it).

    Without LAB: the lab that is running (when exactly one is).

    \b
    Examples:
      opslabs shell nginx-load-balancer        the first host
      opslabs shell nginx-load-balancer web1
      opslabs shell web1                       host web1 of the only running lab
    """
    from opslabs import workshop

    if lab and host is None and _catalog(ctx).find_lab(lab) is None:
        lab, host = None, lab  # `opslabs shell web1`: a host of the only running lab
    command = workshop.shell_command(_running_lab(ctx, lab), host)
    os.execvp(command[0], command)


def _running_lab(ctx: click.Context, lab: str | None):
    """The named lab, or the only one running when none is named."""
    from opslabs import workshop

    return _lab(ctx, lab or workshop.only_running_lab())


@main.command()
@click.argument("lab", required=False)
@click.option("--step", type=int, default=None, help="Check this step instead of the current one.")
@click.pass_context
def check(ctx: click.Context, lab: str | None, step: int | None) -> None:
    """Am I done? Run the current step's checks against your live hosts.

    Exits 0 when the step passes and 1 when it does not, so it can be scripted.
    Without LAB: the lab that is running (when exactly one is).

    \b
    Example:
      opslabs check nginx-load-balancer && echo "on to the next step"
    """
    from opslabs import workshop

    entry = _running_lab(ctx, lab)
    report, progress = workshop.check(entry, step)
    _show_report(entry, report, progress)
    sys.exit(0 if report.passed else 1)


@main.command()
@click.argument("lab", required=False)
@click.option("--step", type=int, default=None, help="Solve this step instead of the current one.")
@click.pass_context
def solve(ctx: click.Context, lab: str | None, step: int | None) -> None:
    """Apply the reference solution of the current step (for when you are stuck).

    Without LAB: the lab that is running (when exactly one is).

    \b
    Example:
      opslabs solve nginx-load-balancer --step 1
    """
    from opslabs import workshop

    entry = _running_lab(ctx, lab)
    report, progress = workshop.solve(entry, step)
    click.echo(f"Applied the solution of step {report.step}.")
    _show_report(entry, report, progress)
    sys.exit(0 if report.passed else 1)


@main.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """List the running labs with their progress.

    \b
    Example:
      opslabs status
    """
    from opslabs import engine
    from opslabs import workshop

    engine.ensure_engine()
    running = workshop.status()
    if not running:
        click.echo("No lab is running. `opslabs list` shows the labs, `opslabs start LAB` starts one.")
        return
    catalog = _catalog(ctx)
    for item in running:
        entry = catalog.find_lab(item.lab)
        if entry is None:
            click.echo(f"{item.lab:<34} (no longer in the knowledge base; `opslabs stop {item.lab}`)")
            continue
        progress = workshop.load_progress(workshop.LabEnvironment(entry, kind=workshop.KIND, run_id=item.run_id))
        hosts = ", ".join(h for h in entry.task.lab.hosts if h in item.hosts)
        problems = item.problems(entry)
        if problems:
            what = "; ".join(f"host {host} {why}" for host, why in problems.items())
            click.secho(f"{entry.id:<34} BROKEN: {what}; `opslabs start {entry.id}` repairs it "
                        f"({len(progress.done)}/{progress.total} steps done are kept)", fg="red")
            continue
        current = f"step {progress.current}" if progress.current else "complete"
        click.echo(f"{entry.id:<34} {len(progress.done)}/{progress.total} steps done, now: {current:<9} hosts: {hosts}")


@main.command()
@click.argument("lab", required=False)
@click.option("--all", "everything", is_flag=True, help="Stop every running lab.")
def stop(lab: str | None, everything: bool) -> None:
    """Remove a running lab's containers and network, and forget its progress.

    Without LAB: the lab that is running (when exactly one is).

    \b
    Examples:
      opslabs stop nginx-load-balancer
      opslabs stop --all
    """
    from opslabs import engine
    from opslabs import workshop

    engine.ensure_engine()
    if not lab and not everything:
        lab = workshop.only_running_lab()
    containers, networks = workshop.stop(None if everything else lab)
    if not containers and not networks:
        click.echo(f"{'No lab' if everything else f'Lab {lab}'} was running.")
        return
    click.echo(f"Removed {len(containers)} container(s) and {len(networks)} network(s).")


@main.command()
@click.argument("labs", nargs=-1)
@click.option("-j", "--jobs", type=click.IntRange(1, 16), default=1, show_default=True,
              help="Build this many labs' images at once (a build waits on downloads as much as on the CPU: 2-3 suit a 2-core machine).")
@policy_options
@click.pass_context
def prepare(ctx: click.Context, labs: tuple[str, ...], jobs: int, policy) -> None:
    """Build every image a workshop needs ahead of time (all labs without LAB arguments).

    Hosts with the same image and setup share one cached layer, built once. The summary
    names the slowest builds: the setups worth trimming.

    \b
    Examples:
      opslabs prepare nginx-load-balancer gitflow-release   # the night before
      opslabs prepare -j 3                                  # every lab, three at a time
    """
    import threading

    from opslabs import engine, live, workshop

    entries = [_lab(ctx, lab, policy) for lab in labs] or _catalog(ctx, policy).labs()
    engine.ensure_engine()
    started = time.monotonic()
    plan = workshop.layers(entries)
    drawing = threading.Lock()  # the board is drawn from the build threads
    with live.Board("prepare", total=len(plan)) as board:
        def begin(entry) -> None:
            with drawing:
                board.begin(entry.id, "getting its images ready")

        def end(entry, done) -> None:
            built = sum(p.built for p in done)
            with drawing:
                board.finish(entry.id, f"{built} built, {len(done) - built} cached" if built else "cached")

        prepared = workshop.prepare(plan, jobs, begin, end)
    built = sorted((p for p in prepared if p.built), key=lambda p: -p.seconds)
    if built:
        slowest = ", ".join(f"{p.lab}/{p.host} {p.seconds:.0f} s" for p in built[:5])
        click.echo(f"Built {len(built)} setup layer(s) in {time.monotonic() - started:.0f} s "
                   f"({sum(p.seconds for p in built):.0f} s of builds, {jobs} at a time); slowest: {slowest}")
    click.secho(f"Ready: {len(entries)} lab(s) start from the local cache, without a network.", fg="green")


# --- the browser workshop ---------------------------------------------------


@main.group("workshop")
def workshop_group() -> None:
    """Run a workshop in the browser: learners need only a browser."""


@workshop_group.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (put a TLS reverse proxy in front for a room).")
@click.option("--port", type=click.IntRange(1, 65535), default=8100, show_default=True)
@click.option("--seats", type=click.IntRange(1, 10000), default=10, show_default=True, help="Labs running at once, per engine.")
@click.option("--idle", default="30m", show_default=True, help="Stop a lab idle this long (progress kept): 30m, 90s, 2h.")
@click.option("--engine", "engines", multiple=True, metavar="URL[,seats=N]", help="A Docker engine for labs (repeatable): unix://, ssh://, tcp://.")
@click.option("--state", "state_path", type=click.Path(path_type=Path), default=None,
              help="The workshop's SQLite file [default: workshop.db beside the progress store].")
@click.option("--secure-cookie", is_flag=True, help="Send the session cookie over HTTPS only (behind a TLS proxy).")
@policy_options
@click.pass_context
def workshop_serve(ctx: click.Context, host: str, port: int, seats: int, idle: str, engines: tuple[str, ...],
                   state_path: Path | None, secure_cookie: bool, policy) -> None:
    """Serve the labs to a room: each learner gets the instructions, a terminal per host and
    Check, Hint and Solve buttons in the browser; the trainer sees the room at /trainer.

    The workshop code and the trainer token are printed at start. Ctrl-C stops the server and
    removes every lab's containers; progress is kept, and a learner's lab is recreated at their step.

    \b
    Examples:
      opslabs workshop serve
      opslabs --labs labs workshop serve --host 0.0.0.0 --seats 20 --idle 45m
    """
    from opslabs.web.server import serve
    from opslabs.web.service import Settings, parse_duration

    settings = Settings(seats=seats, idle=parse_duration(idle), engines=engines)
    serve(_catalog(ctx, policy), host, port, settings, state_path, secure_cookie=secure_cookie)


@workshop_group.command("manifests")
@click.argument("lab")
@click.option("--registry", required=True, metavar="REGISTRY/PATH",
              help="Where the cluster pulls the labs' setup images from, e.g. registry.example.org/opslabs.")
@click.option("--run-id", default="0000", show_default=True, help="The lab run this namespace is for (one per learner).")
@click.option("--owner", default="", help="The learner, as a label on the namespace.")
@click.option("--online", is_flag=True, help="Let the hosts reach the internet (a step that teaches installing).")
@policy_options
@click.pass_context
def workshop_manifests(ctx: click.Context, lab: str, registry: str, run_id: str, owner: str, online: bool, policy) -> None:
    """Print one learner's lab as Kubernetes objects (YAML for `kubectl apply -f -`): a
    namespace with a NetworkPolicy, a pod and a headless service per host, a resource quota.
    The setup images are this machine's cache; the comments say how to push them.

    \b
    Example:
      opslabs workshop manifests nginx-load-balancer --registry registry.example.org/opslabs --run-id ada01
    """
    import yaml

    from opslabs import engine, images
    from opslabs.web.kubernetes import lab_manifests

    entry = _lab(ctx, lab, policy)
    engine.ensure_engine()
    local: dict[str, str] = {}
    for name, host in entry.task.lab.hosts.items():
        images.ensure_image(host.image)
        local[name] = f"{images.CACHE_REPOSITORY}:{images.setup_key(host)}" if host.setup or host.files else host.image
    pushed = {name: f"{registry.rstrip('/')}/{image}" for name, image in local.items()}
    for tag, image in sorted(set(zip(local.values(), pushed.values()))):
        build = "" if engine.image_exists(tag) else f"opslabs prepare {entry.id} && "
        click.echo(f"# {build}docker tag {tag} {image} && docker push {image}")
    objects = lab_manifests(entry, run_id, pushed, owner=owner, online=online)
    click.echo(yaml.safe_dump_all(objects, sort_keys=False), nl=False)


@main.command("new")
@click.argument("directory", required=False, default=".", type=click.Path(path_type=Path))
@click.option("--install-from", "install_from", metavar="SPEC", default=None,
              help="Where the new repository installs opslabs from: a wheel, a source folder, a URL or a package spec "
                   "[default: the wheel or source this opslabs was installed from].")
def new(directory: Path, install_from: str | None) -> None:
    """Start a content repository in DIRECTORY (new or empty): site configuration, an example
    area with a guide and a lab, CI for GitHub Actions and Jenkins, a pre-commit hook, a Makefile.

    \b
    Examples:
      opslabs new runbooks && cd runbooks && make serve
      opslabs new runbooks --install-from https://example.org/opslabs-0.1.0-py3-none-any.whl
    """
    from opslabs.scaffold.new import create

    created = create(directory, install_from)
    for path in created.files:
        click.echo(f"  wrote {created.root / path}")
    click.echo(f"opslabs installs from: {created.install_spec} (requirements.txt)")
    if created.install_spec.startswith("/"):
        click.secho("note: a path on this machine: CI runners cannot reach it; record a URL or a package spec "
                    "with --install-from before you push", fg="yellow", err=True)
    click.echo(f"Next: cd {created.root} && make serve   (make test verifies the example lab)")
