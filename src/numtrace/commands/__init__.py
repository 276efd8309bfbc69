"""The commands that open files, check options and hand computed data to a renderer.

``trace plot`` (:mod:`~numtrace.commands.plot`), ``trace diff --html``
(:mod:`~numtrace.commands.html`) and ``trace show`` (:mod:`~numtrace.commands.show`):
each opens the traces (:mod:`numtrace.formats`), asks :mod:`numtrace.compare` for
what to draw or print, and gives it to :mod:`numtrace.report`, which only formats.
The command line (:mod:`numtrace.cli`) parses the options and calls them.
"""
