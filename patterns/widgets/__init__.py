"""ipywidgets front ends for the notebooks.

Each widget is a thin view: the decisions it shows come from the pattern modules, so what a
reader explores interactively is exactly what the tested code does. No widget here ever asks
for a real API key (a ``Password`` widget's value is saved into the notebook's widget state);
use :func:`patterns.keys.prompt_for_key` instead.
"""
