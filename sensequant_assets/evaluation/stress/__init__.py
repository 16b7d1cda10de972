"""Stress tests: replay the student's out-of-sample predictions through market stress windows.

One module per step, each readable and testable alone: ``windows`` (the named date ranges and
their CSV file), ``replay`` (the predictions traded through each window beside three
baselines), ``scoring`` (a window's figures turned into a resilience score and a failure-mode
label), ``result`` (what a run returns) and ``report`` (the files it writes). Callers import
from those modules; this package re-exports nothing.
"""
