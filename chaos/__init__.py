"""The fault battery (issue 17): kills, outages and restarts under load on a real local
stack, each scenario checked against the data, request and accounting invariants.

`make chaos` runs the short profile; `python -m chaos --profile long` the bench one.
docs/reliability.md describes the scenarios and holds the figures.
"""
