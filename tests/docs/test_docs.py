"""Every shell and Python block of README.md and docs/ runs, so a document cannot drift from the tool.

Each document runs in its own scratch directory, block after block as a reader would type them
(the directory a ``cd`` leaves is where the next block starts), with the ``trace`` and ``python``
of this environment first on PATH and ``$REPO`` the repository root. How a block runs, and the
hidden setup a few need (a model to watch, traces to compare), are HTML comments in the document
itself: tests/docs/blocks.py describes them.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from blocks import RUN, Block, commands, console_steps, expected_status, matches, parse_blocks

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TIMEOUT = 900
#: why a block may be left out: it needs what this machine has not, or it is what runs this check
ALLOWED_SKIPS = ("Mac", "Swift", "Xcode", "installs")


def blocks_of(path: Path) -> list[Block]:
    return parse_blocks(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))


def environment() -> dict:
    # a reader's shell: no terminal size, no PYTHONPATH, and not inside `make test` (a nested make
    # announces its directory)
    dropped = ("COLUMNS", "LINES", "PYTHONPATH", "NUMTRACE_CLI_FAST", "MAKELEVEL", "MAKEFLAGS", "MFLAGS")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(REPO=str(ROOT), NUMTRACE_PROGRESS_AFTER="-1", PYTHONDONTWRITEBYTECODE="1")
    return env


class Reader:
    """One reader's terminal: a working directory that ``cd`` changes, and the blocks run in it."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.cwd = scratch / "home"
        self.cwd.mkdir()
        self.env = {**environment(), "TMPDIR": str(scratch), "HOME": str(self.cwd)}

    def where(self, block: Block) -> Path:
        return ROOT if block.options.get("cwd") == "repo" else self.cwd

    def run(self, block: Block) -> None:
        if "skip" in block.options:
            return
        kind = {"bash": "sh", "shell": "sh", "py": "python"}.get(block.lang, block.lang)
        if "file" in block.options:
            target = self.where(block) / block.options["file"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
        elif kind == "sh":
            self.shell(block)
        elif kind == "console":
            self.console(block)
        elif kind == "python":
            self.python(block)
        elif kind == "toml":
            tomllib.loads(block.text)

    def _bash(self, block: Block, script: str) -> subprocess.CompletedProcess:
        here = self.scratch / f".cwd-{block.line}"
        prelude = f"trap 'pwd > {str(here)!r}' EXIT\n"
        done = subprocess.run(["bash", "-c", prelude + script], cwd=self.where(block), env=self.env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=TIMEOUT)  # fmt: skip
        if here.exists() and block.options.get("cwd") != "repo":
            self.cwd = Path(here.read_text().strip())
        return done

    def shell(self, block: Block) -> None:
        text = block.text
        if "without" in block.options:
            left_out = block.options["without"].split("(")[0].strip()
            text = "\n".join("# (left out)" if line.startswith(left_out) else line for line in text.split("\n"))
        status = self.scratch / f".status-{block.line}"
        trap = f"trap 'echo \"$? $LINENO\" >> {str(status)!r}' ERR\n"  # line 1: the block starts at line 3
        done = self._bash(block, trap + text)
        failed = {}
        if status.exists():
            for entry in status.read_text().split("\n"):
                if entry:
                    code, line = entry.split()
                    failed[int(line) - 2] = int(code)
        for first, last, command in commands(text):
            got = next((code for line, code in failed.items() if first <= line <= last), 0)
            for line in range(first, last + 1):
                failed.pop(line, None)
            wanted = expected_status(command)
            assert got == wanted, (
                f"{block.where}: `{command.strip()}` exited {got}, the document says {wanted}\n{done.stdout[-4000:]}"
            )
        assert not failed, f"{block.where}: a command failed at lines {sorted(failed)}\n{done.stdout[-4000:]}"

    def console(self, block: Block) -> None:
        steps = console_steps(block.text)
        script = ["__nt_status=0"]
        for i, (command, _) in enumerate(steps):
            script += [f"printf '@@docs-test {i}@@\\n'", "(exit $__nt_status)", command, "__nt_status=$?"]
        done = self._bash(block, "\n".join(script) + "\n")
        pieces = re.split(r"@@docs-test (\d+)@@\n", done.stdout)
        outputs = {int(pieces[k]): pieces[k + 1] for k in range(1, len(pieces) - 1, 2)}
        for i, (command, expected) in enumerate(steps):
            actual = outputs.get(i, "").rstrip("\n").split("\n") if outputs.get(i) else []
            assert matches(expected, actual), (
                f"{block.where}: `$ {command}` printed something else than the document shows.\n"
                f"--- the document\n" + "\n".join(expected) + "\n--- the tool\n" + "\n".join(actual)
            )

    def python(self, block: Block) -> None:
        where = self.where(block)
        if block.options.get("pytest"):
            path = where / f"test_docs_block_{block.line}.py"
            argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", path.name]
        else:
            path = where / f"docs_block_{block.line}.py"
            argv = [sys.executable, path.name]
        path.write_text(block.text, encoding="utf-8")
        done = subprocess.run(argv, cwd=where, env=self.env, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, timeout=TIMEOUT)  # fmt: skip
        wanted = int(block.options.get("exit", 0))
        assert done.returncode == wanted, (
            f"{block.where}: exited {done.returncode}, not {wanted}\n{done.stdout[-4000:]}"
        )


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_block_of_the_document_runs(doc, tmp_path):
    reader = Reader(tmp_path)
    for block in blocks_of(doc):
        reader.run(block)


def test_every_shell_and_python_block_runs_or_says_why():
    skipped = []
    for doc in DOCS:
        for block in blocks_of(doc):
            if block.lang == "" and block.text.startswith("$ "):
                pytest.fail(f"{block.where}: a session with '$ ' prompts: tag it ```console so it is run")
            if block.lang in RUN and "skip" in block.options:
                reason = str(block.options["skip"])
                assert any(word in reason for word in ALLOWED_SKIPS), f"{block.where}: skipped for {reason!r}"
                skipped.append(block.where)
    assert len(skipped) <= 4, f"more blocks skipped than run on this machine allows: {skipped}"


def test_the_parser_reads_what_bash_reads():
    text = "trace run -o a.st \\\n    s.py   # exit 2\ncat > x.py <<'EOF'\n# exit 3\nEOF\ntrace diff a b  # exit 1: LARGE\n"
    found = commands(text)
    assert [(first, last) for first, last, _ in found] == [(1, 2), (3, 5), (6, 6)]
    assert [expected_status(command) for _, _, command in found] == [2, 0, 1]  # a heredoc's lines are not comments
    assert matches(["a", "...", "z"], ["a", "b", "c", "z"]) and not matches(["a", "z"], ["a", "b", "z"])
