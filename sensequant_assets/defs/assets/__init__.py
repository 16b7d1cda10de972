"""The asset definitions, one module per asset group (``production_model``: ``promotion``).

Each module builds its assets (and reads its resources) and nothing else: the computations are
the domain packages', the check specs and results ``defs.checks``'.
"""
