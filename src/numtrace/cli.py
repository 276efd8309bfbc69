"""The ``trace`` (alias ``numtrace``) command line: thin commands over the library.

Exit status: 0 success (for ``diff``: no stage LARGE), 1 a failing verdict
(or the traced script failed), 2 unusable input, with one line on stderr.

Example (shell):
    trace run -o ref.safetensors pipeline.py --dtype float64
    trace diff ref.safetensors cand.safetensors --only 'frontend.*'
"""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager, nullcontext
from enum import Enum
from typing import Any, Iterator, List, Optional

import typer
import typer.core

from . import backends
from .compare.verdict import VERDICT_HELP
from .errors import NumtraceError

app = typer.Typer(
    name="trace",
    help="numtrace: record named intermediate tensors of two implementations and find where they diverge.",
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: reads at 80 columns, flags without a <bool> metavar
)

_REFERENCE = "Reference trace (.safetensors, .st or .h5)."
_CANDIDATE = "Candidate trace, compared against the reference."


class _PlainHelp(typer.core.TyperCommand):
    """A command whose help names each argument by its metavar alone: ``trace show [OPTIONS] TRACE
    [STAGE]`` and ``TRACE  A trace ...``, not typer's ``{TRACE} [[STAGE]]`` and ``TRACE <str>``."""

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        return pieces + [_argument_name(p, usage=True) for p in self.get_params(ctx) if p.param_type_name == "argument"]

    def format_options(self, ctx: Any, formatter: Any) -> None:
        arguments, options = [], []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is not None and param.param_type_name == "argument":
                arguments.append((_argument_name(param), record[1]))
            elif record is not None:
                options.append(record)
        for title, records in (("Arguments", arguments), ("Options", options)):
            if records:
                with formatter.section(title):
                    formatter.write_dl(records)


def _argument_name(param: Any, usage: bool = False) -> str:
    """``REFERENCE``; on the usage line an optional argument in brackets (``[STAGE]``)."""
    name = param.metavar or (param.name or "").upper()
    return f"[{name}]" if usage and not param.required and not name.startswith("[") else name


def _command(**settings):
    """``app.command`` with plain argument names in its help (:class:`_PlainHelp`)."""
    return app.command(cls=_PlainHelp, **settings)


def _replaying() -> str:
    """The registry's backends that can replay, in words: ``torch, mlx or fastai``."""
    found = [entry.name for entry in backends.REGISTRY if entry.replays]
    return ", ".join(found[:-1]) + f" or {found[-1]}" if len(found) > 1 else "".join(found)


def _version(value: bool) -> None:
    if value:
        from ._version import __version__

        typer.echo(f"numtrace {__version__}")
        raise typer.Exit()


@app.callback(invoke_without_command=True)
def _main(
    ctx: typer.Context,
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print numtrace's version and exit."
    ),
) -> None:
    """numtrace: record named intermediate tensors of two implementations and find where they diverge."""
    if ctx.invoked_subcommand is None:  # bare `trace`: the help on stdout, and a usage error's status
        typer.echo(ctx.get_help())
        raise typer.Exit(2)


class FailOn(str, Enum):
    large = "large"
    small = "small"
    missing = "missing"
    never = "never"


#: ``--backend``'s choices: the backend registry's names (numtrace.backends.REGISTRY)
Backend = Enum("Backend", {name: name for name in backends.names()}, type=str)  # type: ignore[misc]


@contextmanager
def _user_errors() -> Iterator[None]:
    """Turn numtrace's own errors into one line on stderr and exit status 2."""
    try:
        yield
    except NumtraceError as error:
        typer.echo(f"trace: error: {error}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo("trace: interrupted", err=True)
        raise typer.Exit(130) from None


EXIT_HELP = """\
Exit status:
  0  no stage fails (--fail-on; by default a LARGE stage fails) and the
     comparison is complete.
  1  a stage fails, or the comparison is incomplete: nothing was
     compared (no stage in common), or a recording did not complete
     (its run crashed or exited non-zero). --allow-incomplete judges
     only the stages compared; --fail-on never always exits 0.
  2  unusable input: a missing, unreadable or corrupt trace, a bad
     option, or an --only, --tol or --map entry that matches no stage."""


@_command(help=f"Compare two traces stage by stage, reference first.\n\n\b\n{VERDICT_HELP}\n\n\b\n{EXIT_HELP}")
def diff(
    reference: str = typer.Argument(..., metavar="REFERENCE", help=_REFERENCE),
    candidate: str = typer.Argument(..., metavar="CANDIDATE", help=_CANDIDATE),
    as_json: bool = typer.Option(False, "--json", help="Print the JSON report on stdout (docs/report.md)."),
    only: Optional[List[str]] = typer.Option(
        None, "--only", metavar="GLOB", help="Compare only stages matching GLOB (repeatable)."
    ),
    tol: Optional[List[str]] = typer.Option(
        None,
        "--tol",
        metavar="[GLOB=]RTOL|rtol=..,atol=..",
        help="Tolerance override, e.g. 1e-3 or 'decoder.*=1e-3' or 'mel=rtol=1e-2,atol=1e-4' (repeatable; last match "
        "wins).",
    ),
    tol_file: Optional[str] = typer.Option(
        None,
        "--tol-file",
        metavar="TOML",
        help="Per-stage tolerances from a TOML file ([tolerance] table: glob = rtol or {rtol, atol}).",
    ),
    fail_on: FailOn = typer.Option(
        FailOn.large,
        "--fail-on",
        help="Which verdict makes the exit status 1: large (default), small (SMALL or LARGE), missing (LARGE or "
        "MISSING), never (always exit 0).",
    ),
    allow_incomplete: bool = typer.Option(
        False,
        "--allow-incomplete",
        help="Judge only the stages compared: do not fail because a recording did not complete or nothing was "
        "compared.",
    ),
    width: Optional[int] = typer.Option(
        None,
        "--width",
        metavar="COLUMNS",
        help="Table width in characters (default: the terminal's, or COLUMNS; 160 when not a terminal).",
    ),
    wide: bool = typer.Option(False, "--wide", help="The wide table (every column), whatever the width."),
    narrow: bool = typer.Option(False, "--narrow", help="The narrow table (one line per stage, its diagnosis below)."),
    show_all: bool = typer.Option(
        False, "--all", help="Show every stage of a long trace (runs of MATCH stages are one line by default)."
    ),
    html: Optional[str] = typer.Option(
        None,
        "--html",
        metavar="FILE",
        help="Also write a self-contained HTML report (summary, sortable stage table, error chart, heatmaps).",
    ),
    name_map: Optional[str] = typer.Option(
        None,
        "--map",
        metavar="TOML",
        help="Stage-name map: renames (globs or re:REGEX), prefixes to strip, stages to ignore (docs/diagnosis.md).",
    ),
    stage: Optional[str] = typer.Option(
        None,
        "--stage",
        metavar="NAME",
        help="Drill into one stage: both sides' statistics, the error profile along each axis, the worst locations, "
        "the findings.",
    ),
    jobs: Optional[int] = typer.Option(
        None,
        "--jobs",
        metavar="N",
        help="Threads comparing large stages at once (default: the cores available); the report is the same.",
    ),
    replay: Optional[str] = typer.Option(
        None,
        "--replay",
        metavar="TRACE",
        help="The replay trace of trace replay: each stage's own error (its module on the reference's inputs) "
        "beside its total error; the root cause is the first module with an own error (docs/replay.md).",
    ),
) -> None:
    from . import diff as run_diff
    from .compare.pairing.names import as_name_map
    from .compare.pairing.options import check_options
    from .compare.verdict import ToleranceTable
    from .formats import load
    from .report.progress import Progress
    from .sharded import open_candidate

    with _user_errors():
        if wide and narrow:
            raise NumtraceError("--wide and --narrow choose opposite layouts: give one of them")
        if jobs is not None and jobs < 1:
            raise NumtraceError(f"--jobs takes a number of threads, 1 or more, not {jobs}")
        tolerances = ToleranceTable.from_options(tol or [], tol_file)
        names = as_name_map(name_map)
        with (
            load(reference, role="reference trace") as ref,
            open_candidate(candidate) as cand,
            load(replay, role="replay trace") if replay is not None else nullcontext() as replayed,
        ):
            check_options(ref, cand, tolerances, names)
            if stage is not None and replay is not None:
                raise NumtraceError("--replay gives every stage's own error in the full diff; leave out --stage")
            if stage is not None:
                from .compare.detail import stage_detail
                from .compare.result import failing_verdicts
                from .report.stage import detail_json, print_detail

                if callable(getattr(cand, "bind", None)):  # the rank traces of a sharded run, combined
                    from .compare.pairing.align import align

                    cand.bind(ref, align(ref, cand, names=names))  # type: ignore[attr-defined]
                detail = stage_detail(ref, cand, stage, tolerances=tolerances, map=names)
                data = detail_json(detail)
                if as_json:
                    typer.echo(json.dumps(data, indent=2, allow_nan=False))
                else:
                    print_detail(data, width=width)
                raise typer.Exit(1 if detail.result.verdict in failing_verdicts(fail_on.value) else 0)
            with Progress("comparing", after=1.0) as bar:
                report = run_diff(
                    ref,
                    cand,
                    tolerances=tolerances,
                    only=only or None,
                    map=names,
                    progress=lambda done, total, name: bar.update(done, total, name),
                    replay=replayed,
                    jobs=jobs,
                )
            if only and not report.stages:
                raise NumtraceError(f"no stage matches --only {' '.join(only)}")
            if html is not None:
                from .commands.html import write_html

                write_html(report, ref, cand, html, map=names)
            if as_json:
                from .report.json_lines import write_report

                write_report(report.to_dict(), sys.stdout)
            else:
                from .report.table import print_diff  # (rich: not imported for --json)

                layout = "wide" if wide else "narrow" if narrow else None
                print_diff(report, width=width, layout=layout, expand=show_all)
    raise typer.Exit(1 if report.failed(fail_on.value, allow_incomplete) else 0)


@_command(
    help="Plot a diff to a PNG: the relative error of every stage in order (first divergence and "
    "root cause marked), or with --stage the reference, candidate and difference of one stage."
)
def plot(
    reference: str = typer.Argument(..., metavar="REFERENCE", help=_REFERENCE),
    candidate: str = typer.Argument(..., metavar="CANDIDATE", help=_CANDIDATE),
    out: str = typer.Option(..., "-o", "--out", metavar="PNG", help="Image to write."),
    stage: Optional[str] = typer.Option(
        None, "--stage", metavar="NAME", help="Plot this stage as heatmaps (or lines, for 1-D) side by side."
    ),
    only: Optional[List[str]] = typer.Option(
        None, "--only", metavar="GLOB", help="Plot only stages matching GLOB (repeatable)."
    ),
    tol: Optional[List[str]] = typer.Option(
        None, "--tol", metavar="[GLOB=]RTOL|rtol=..,atol=..", help="Tolerance override, as for diff."
    ),
    tol_file: Optional[str] = typer.Option(
        None, "--tol-file", metavar="TOML", help="Per-stage tolerances from a TOML file, as for diff."
    ),
    name_map: Optional[str] = typer.Option(None, "--map", metavar="TOML", help="Stage-name map, as for diff."),
) -> None:
    from .commands.plot import run_plot
    from .compare.verdict import ToleranceTable

    with _user_errors():
        tolerances = ToleranceTable.from_options(tol or [], tol_file)
        written = run_plot(
            reference, candidate, out, stage=stage, only=only or None, tolerances=tolerances, map=name_map
        )
    typer.echo(f"wrote {written}")


@_command(
    help="List a trace's stages in execution order with their statistics and metadata; with STAGE, "
    "show that stage in detail. A stats-only trace (trace run --stats) shows each stage's recorded "
    "shape, dtype, statistics, channel means and hash."
)
def show(
    trace_path: str = typer.Argument(..., metavar="TRACE", help="A trace (.safetensors/.st/.h5)."),
    stage: Optional[str] = typer.Argument(
        None, metavar="[STAGE]", help="Show only this stage, in detail: statistics, hash, channel means, values."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    only: Optional[List[str]] = typer.Option(None, "--only", metavar="GLOB", help="Show only stages matching GLOB."),
    width: Optional[int] = typer.Option(None, "--width", metavar="COLUMNS", help="Table width in characters."),
) -> None:
    from .commands.show import print_show, print_stage_show, show_dict, stage_dict
    from .formats import load

    with _user_errors():
        with load(trace_path) as trace:
            if stage is not None and as_json:
                typer.echo(json.dumps(stage_dict(trace, stage), indent=2, allow_nan=False))
            elif stage is not None:
                print_stage_show(trace, stage, width=width)
            elif as_json:
                typer.echo(json.dumps(show_dict(trace, only), indent=2, allow_nan=False))
            else:
                print_show(trace, only, width=width)


@_command(
    help="Write the stage pairing `trace diff REFERENCE CANDIDATE` uses as a map file to review, edit and "
    "commit: `trace diff REFERENCE CANDIDATE --map FILE` then pairs exactly so (docs/diagnosis.md)."
)
def align(
    reference: str = typer.Argument(..., metavar="REFERENCE", help=_REFERENCE),
    candidate: str = typer.Argument(..., metavar="CANDIDATE", help=_CANDIDATE),
    out: Optional[str] = typer.Option(
        None, "-o", "--out", metavar="TOML", help="Map file to write (default: print it on stdout)."
    ),
    name_map: Optional[str] = typer.Option(
        None, "--map", metavar="TOML", help="Start from this map (its prefixes, ignores and renames are kept)."
    ),
) -> None:
    from ._version import __version__
    from .compare.pairing.align import align as pair_stages
    from .compare.pairing.names import as_name_map, map_text
    from .compare.pairing.options import check_options
    from .compare.verdict import ToleranceTable
    from .formats import load
    from .formats.writer import write_text

    with _user_errors():
        names = as_name_map(name_map)
        with load(reference, role="reference trace") as ref, load(candidate, role="candidate trace") as cand:
            check_options(ref, cand, ToleranceTable(), names)
            pairs = pair_stages(ref, cand, None, names)
        header = (
            f"How numtrace {__version__} pairs the stages of\n  reference {reference}\n  candidate {candidate}\n"
            f"`trace diff REFERENCE CANDIDATE --map THIS_FILE` pairs exactly so."
        )
        text = map_text(pairs, names, header)
        if out is None:
            typer.echo(text, nl=False)
        else:
            write_text(out, text, "map file")
    counts: dict[str, int] = {}
    for pair in pairs:
        counts[pair.how] = counts.get(pair.how, 0) + 1
    paired = sum(n for how, n in counts.items() if how != "missing")
    by = ", ".join(
        f"{counts[how]} {how}" for how in ("mapped", "normalized", "tuple", "aligned", "twin") if counts.get(how)
    )
    where = f"; wrote {out}" if out is not None else ""
    typer.echo(
        f"trace align: {paired} pairs{f' ({by})' if by else ''}, {counts.get('missing', 0)} unpaired{where}", err=True
    )


@_command(help="Convert a trace between safetensors (.safetensors/.st) and HDF5 (.h5), without loss.")
def convert(
    source: str = typer.Argument(..., metavar="SOURCE", help="Trace to read."),
    destination: str = typer.Argument(
        ..., metavar="DESTINATION", help="Trace to write; its extension picks the format."
    ),
) -> None:
    from .formats import convert as convert_trace

    with _user_errors():
        written = convert_trace(source, destination)
    typer.echo(f"wrote {written}")


@_command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "allow_interspersed_args": False},
    help="Run SCRIPT as `python SCRIPT ARGS` would, with a recording active, and write its trace. "
    "The stages tapped before a crash are still written; the exit status is the script's.",
)
def run(
    ctx: typer.Context,
    script: str = typer.Argument(
        ..., metavar="SCRIPT [ARGS]...", help="The Python script to run; arguments after it go to the script."
    ),
    backend: Backend = typer.Option(
        Backend("numpy"),
        "--backend",
        help="Framework whose arrays and modules are captured (numpy: the script's numtrace.tap calls only).",
    ),
    out: Optional[str] = typer.Option(
        None, "-o", "--out", metavar="OUT", help="Trace to write (default: SCRIPT's name with .safetensors)."
    ),
    probe: Optional[List[str]] = typer.Option(
        None,
        "--probe",
        "--only",
        metavar="GLOB",
        help="Record only stages matching GLOB (repeatable), e.g. --only 'decoder.ode.step@[2-4]'.",
    ),
    max_calls: Optional[int] = typer.Option(
        None, "--max-calls", min=1, metavar="N", help="Record at most N calls of each stage name."
    ),
    inputs: bool = typer.Option(
        False, "--inputs", help="Also record each module's inputs, as <module>.input (module backends)."
    ),
    weights: bool = typer.Option(
        False,
        "--weights",
        help="Also record each model's parameters and buffers once, under their names (module backends).",
    ),
    probe_function: Optional[List[str]] = typer.Option(
        None,
        "--probe-function",
        metavar="MODULE:FUNC[=STAGE]",
        help="Record FUNC's return value at every call, as FUNC's qualified name or STAGE (repeatable).",
    ),
    stats: bool = typer.Option(
        False,
        "--stats",
        help="Record a sketch of each stage instead of its values: statistics, per-channel means and a hash "
        "(docs/performance.md); trace diff compares sketches.",
    ),
    stats_axis: Optional[int] = typer.Option(
        None,
        "--stats-axis",
        metavar="AXIS",
        help="Channel axis of the sketches' per-channel means (default: 1 for stages of 2+ dimensions; negative "
        "counts from the end).",
    ),
) -> None:
    from .run import default_output, run_script

    with _user_errors():
        result = run_script(
            script,
            list(ctx.args),
            out or default_output(script),
            backend=backend.value,
            probes=probe,
            max_calls=max_calls,
            inputs=inputs,
            weights=weights,
            probe_functions=probe_function,
            stats=stats,
            stats_axis=stats_axis,
        )
    note = "" if result.exit_code == 0 else f" (the script {result.status})"
    stages = f"{result.stages} stage{'' if result.stages == 1 else 's'}"
    typer.echo(f"trace run: wrote {stages} to {result.out}{note}", err=True)
    raise typer.Exit(result.exit_code)


@_command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True, "allow_interspersed_args": False},
    help="Run the candidate SCRIPT twice: once to pair its module calls with REFERENCE's (recorded with trace run "
    "--inputs), once calling each paired module again on the reference's inputs, into a replay trace for trace diff "
    "--replay (docs/replay.md).",
)
def replay(
    ctx: typer.Context,
    reference: str = typer.Argument(..., metavar="REFERENCE", help=_REFERENCE + " Recorded with --inputs."),
    script: str = typer.Argument(
        ..., metavar="SCRIPT [ARGS]...", help="The candidate's Python script; arguments after it go to the script."
    ),
    backend: Backend = typer.Option(
        Backend("torch"), "--backend", help=f"Framework of the candidate's modules ({_replaying()})."
    ),
    out: str = typer.Option("replay.safetensors", "-o", "--out", metavar="OUT", help="Replay trace to write."),
    candidate_out: Optional[str] = typer.Option(
        None, "--candidate-out", metavar="TRACE", help="Also keep the candidate's own trace of the replaying run."
    ),
    name_map: Optional[str] = typer.Option(None, "--map", metavar="TOML", help="Stage-name map, as for diff."),
) -> None:
    from .compare.pairing.names import as_name_map
    from .replay.command import replay_script
    from .run import backend_module

    with _user_errors():
        backend_module(backend.value)  # a missing framework: one line now, not once per run of the script
        result = replay_script(
            reference,
            script,
            list(ctx.args),
            out,
            backend=backend.value,
            names=as_name_map(name_map),
            candidate_out=candidate_out,
        )
    for line in result.lines():
        typer.echo(line, err=True)
    raise typer.Exit(result.exit_code)


def main() -> None:
    """Console-script entry point for ``trace`` and ``numtrace``."""
    try:
        # start-up: a plain `trace diff` skips typer's parser (numtrace/cli_fast.py)
        from .cli_fast import run as run_fast

        code = run_fast(sys.argv[1:], diff)
        if code is not None:
            sys.exit(code)
        app()
    except BrokenPipeError:  # `trace diff a b | head`
        sys.stderr.close()
        sys.exit(0)
