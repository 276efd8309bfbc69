"""The code blocks of a Markdown document, and the directives that say how a test runs them.

A block is a fenced code block (three backticks and a language). ``sh``, ``console`` and
``python`` blocks are run; ``toml`` blocks are parsed; others (``json`` excerpts, ``swift``,
plain text) are shown, not run. What a reader does not need to see goes in HTML comments, which
Markdown does not render:

- ``<!-- docs-test: KEY=VALUE; KEY -->`` on the line(s) before a block sets how it runs:
  ``skip=REASON`` (a block that needs a Mac, Swift or Xcode), ``cwd=repo`` (run it in the
  repository root, not the document's scratch directory), ``file=PATH`` (write the block to PATH
  instead of running it), ``pytest`` (a Python block run as a pytest file), ``exit=N`` (a Python
  block's expected exit status), ``without=COMMAND`` (leave out the lines starting with COMMAND;
  the reason follows in parentheses).
- ``<!-- docs-test: setup`` ... ``-->`` holds hidden blocks run in place, before the next visible
  block: the files a command of the document needs (a script, a model, traces).

In a ``sh`` block every command must exit 0, unless its comment says ``exit N``
(``trace diff a b   # exit 1: a stage is LARGE``). A ``console`` block is ``$ command`` lines,
each followed by the output it must print; a line ``...`` stands for any number of lines.

Example:
    >>> text = "<!-- docs-test: cwd=repo -->\\n```sh\\nmake demo\\n```\\n"
    >>> [(b.lang, b.text, b.options) for b in parse_blocks(text, "X.md")]
    [('sh', 'make demo\\n', {'cwd': 'repo'})]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

FENCE = re.compile(r"^(\s*)(`{3,})([\w+-]*)\s*$")
DIRECTIVE = re.compile(r"^<!--\s*docs-test:\s*(.*?)\s*-->\s*$")
SETUP = re.compile(r"^<!--\s*docs-test:\s*setup\s*$")
RUN = {"sh", "bash", "shell", "console", "python", "py"}


@dataclass
class Block:
    doc: str
    line: int  # of the opening fence, 1-based
    lang: str
    text: str
    options: dict = field(default_factory=dict)
    hidden: bool = False

    @property
    def where(self) -> str:
        return f"{self.doc}:{self.line}"


def parse_options(spec: str) -> dict:
    """``"cwd=repo; exit=1; pytest"`` -> ``{"cwd": "repo", "exit": "1", "pytest": True}``"""
    options: dict = {}
    for item in filter(None, (part.strip() for part in spec.split(";"))):
        key, eq, value = item.partition("=")
        options[key.strip()] = value.strip() if eq else True
    return options


def parse_blocks(text: str, doc: str) -> list[Block]:
    """Every fenced block of ``text`` in order, hidden setup blocks included."""
    lines = text.split("\n")
    blocks: list[Block] = []
    pending: dict = {}
    hidden = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if SETUP.match(line.strip()):
            hidden = True
        elif hidden and line.strip() == "-->":
            hidden = False
        elif (directive := DIRECTIVE.match(line.strip())) and directive.group(1) != "setup":
            pending.update(parse_options(directive.group(1)))
        elif fence := FENCE.match(line):
            indent, ticks, lang = fence.groups()
            body = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith(ticks):
                body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
                i += 1
            start = i - len(body)
            blocks.append(Block(doc, start, lang, "\n".join(body) + "\n", pending, hidden))
            pending = {}
        i += 1
    return blocks


def commands(text: str) -> list[tuple[int, int, str]]:
    """The commands of a ``sh`` block as (first line, last line, text), 1-based, the way bash reads
    them: a line ending in ``\\`` goes on, a heredoc runs to its terminator; comments stay."""
    lines = text.split("\n")
    out = []
    i = 0
    while i < len(lines):
        if not lines[i].strip() or lines[i].lstrip().startswith("#"):
            i += 1
            continue
        first, chunk = i, [lines[i]]
        while chunk[-1].endswith("\\") and i + 1 < len(lines):
            i += 1
            chunk.append(lines[i])
        heredoc = re.search(r"<<-?\s*['\"]?(\w+)['\"]?", "\n".join(chunk))
        if heredoc:
            while i + 1 < len(lines) and lines[i].strip() != heredoc.group(1):
                i += 1
                chunk.append(lines[i])
        out.append((first + 1, i + 1, "\n".join(chunk)))
        i += 1
    return out


def expected_status(command: str) -> int:
    """The exit status a command's own comment promises (``# exit 1: ...``), 0 by default."""
    first_line = command.split("\n", 1)[0] if "<<" in command else command
    found = re.findall(r"#.*?\bexit (\d+)", first_line)
    return int(found[-1]) if found else 0


def console_steps(text: str) -> list[tuple[str, list[str]]]:
    """A ``console`` block as (command, expected output lines) pairs."""
    steps: list[tuple[str, list[str]]] = []
    for line in text.rstrip("\n").split("\n"):
        if line.startswith("$ "):
            steps.append((line[2:], []))
        elif steps:
            steps[-1][1].append(line)
        else:
            raise ValueError(f"a console block must start with '$ command', not {line!r}")
    return steps


def matches(expected: list[str], actual: list[str]) -> bool:
    """Line by line, trailing spaces ignored; an expected line ``...`` matches any number of lines."""
    expected = [line.rstrip() for line in expected]
    actual = [line.rstrip() for line in actual]
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[k:]) for k in range(len(actual) + 1))
    return bool(actual) and expected[0] == actual[0] and matches(expected[1:], actual[1:])
