"""Driving Dagster runs from a command: the historical run's phases (``historical``), a
command's runs spread over worker processes (``run_pool``), a phase's progress
(``run_progress``) and what every command shares about running jobs (``runs``).

Kept apart from ``defs/`` (the definitions Dagster loads) and ``cli/`` (the arguments a
person types): this is the code that launches the definitions' jobs and reports on them.
"""
