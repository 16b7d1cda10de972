"""Out-of-sample evidence for a candidate: walk-forward, backtests, statistics, stress, gate.

``walk_forward`` → ``validation`` (classification, backtests, baselines, rule optimizer) →
``stat_tests`` (bootstrap, paired tests, PSR/DSR, PBO) → ``stress`` → ``gate``; ``reports`` and
``charts`` render them for a reviewer; ``calibration`` checks the gate on synthetic universes.
"""
