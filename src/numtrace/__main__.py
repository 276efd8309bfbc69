"""``python -m numtrace ...``: the ``trace`` command, for when the console script is not on PATH.

Example:
    $ python -m numtrace --version
"""

from .cli import main

if __name__ == "__main__":
    main()
