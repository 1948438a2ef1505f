"""ragline_core: what every ragline service shares.

Settings, logging, errors, interceptors, telemetry, health and server bootstrap
live here once; services import them instead of copying.
"""
