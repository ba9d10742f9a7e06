"""Presentation: pure Plotly figures, the self-contained HTML report, units."""
