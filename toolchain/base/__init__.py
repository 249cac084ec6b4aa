"""The bottom layer: errors, atomic writes, progress, quiet native output, the TF env, isolated envs, and the
child-process protocol (child.py on the host, wire/edgecomp_wire.py inside every child).

Imports nothing of edgecomp's outside this package; converters/, devices/ and the pipeline build on it.
"""
