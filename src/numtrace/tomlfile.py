"""Reading the TOML files numtrace takes (tolerances, name maps), with one-line errors.

Example:
    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "tol.toml")
    >>> _ = open(path, "w").write('[tolerance]\\ndefault = 1e-4\\n')
    >>> read_toml(path, "tolerance file", ValueError)
    {'tolerance': {'default': 0.0001}}
"""

from __future__ import annotations

try:
    import tomllib  # type: ignore[import-not-found]  # mypy checks for Python 3.10, which lacks it
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found]  # installed on Python 3.10 only


def read_toml(path, what: str, error: type[Exception]) -> dict:
    """The parsed file; an unreadable or invalid file raises ``error`` naming ``what`` and the path."""
    where = str(path)
    try:
        with open(where, "rb") as handle:
            return tomllib.load(handle)
    except OSError as err:
        raise error(f"cannot read {what} {where!r}: {err.strerror or err}") from None
    except tomllib.TOMLDecodeError as err:
        raise error(f"{what} {where!r} is not valid TOML: {err}") from None
