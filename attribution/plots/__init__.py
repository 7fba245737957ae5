"""Figures that mirror innsight_plotly: per-output grids, box plots, image quantiles.

The builders return an :class:`InnsightFigure` (a plotly ``Figure`` with ``fig[i, j]``
sub-grid selection); :meth:`AttributionResult.plot` and
:meth:`AttributionResult.plot_global` call them.
"""

from attribution.plots.figure import InnsightFigure
from attribution.plots.individual import plot_individual
from attribution.plots.summary import plot_global_result

__all__ = ["InnsightFigure", "plot_global_result", "plot_individual"]
