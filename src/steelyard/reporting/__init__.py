"""Rendering: the only place that formats numbers or words results (console, JSON / CSV, Markdown, HTML).

Results everywhere else are plain data. :mod:`~steelyard.reporting.views` maps each run kind to
its loader, console renderer and report part; ``*_view`` modules render one result kind each
(evaluation, training, distill, search, study, compress), :mod:`~steelyard.reporting.explain`
words a recommendation's structured reasons, :mod:`~steelyard.reporting.commands` rebuilds the
command that reproduces a run, :mod:`~steelyard.reporting.progress` draws the library's progress.
"""
