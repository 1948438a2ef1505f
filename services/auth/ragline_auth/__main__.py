"""python -m ragline_auth"""

from ragline_core.server import run_service

if __name__ == "__main__":
    run_service("ragline_auth.app:SPEC", "ragline_auth.settings:AuthSettings")
