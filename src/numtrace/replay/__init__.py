"""Replay: the candidate's modules run on the reference's recorded inputs, to tell each module's
own error from the error it inherits (``trace replay``, ``trace diff --replay``).

:mod:`~numtrace.replay.plan` pairs the candidate's module calls with the reference's,
:mod:`~numtrace.replay.inputs` lays the reference's inputs out as the candidate's call takes
them, :mod:`~numtrace.replay.session` runs each module again beside the live call (the
backends call it from their capture hooks), :mod:`~numtrace.replay.command` runs a script
twice (once to pair, once to replay).
"""
