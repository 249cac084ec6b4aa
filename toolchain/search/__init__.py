"""`edgecomp search`: a multi-objective search over the compression pipeline (Optuna; Ray optional).

Only `space` is imported by the recipe; Optuna and Ray are imported inside `study` and `execute`, which the
`search` command alone loads, so `edgecomp convert` works without the `search` extra.
"""
