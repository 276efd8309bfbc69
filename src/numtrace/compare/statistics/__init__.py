"""Statistics: both sides' statistics and the difference metrics of a stage, in one streaming pass.

- :mod:`.stats`: the streaming passes (:func:`~.stats.compare_stage`, :func:`~.stats.summarize`);
- :mod:`.metrics`: :class:`~.metrics.SideStats`, :class:`~.metrics.DiffStats` and their accumulators;
- :mod:`.blocks`: fused block kernels and an ordered thread map (the fast path).
"""
