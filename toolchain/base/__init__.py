"""The bottom layer: errors, atomic writes, progress, quiet native output, the TF env, isolated envs.

Imports nothing of edgecomp's outside this package; converters/, devices/ and the pipeline build on it.
"""
