"""python -m ragline_ingest"""

from ragline_core.server import run_service

if __name__ == "__main__":
    run_service("ragline_ingest.app:SPEC", "ragline_ingest.settings:IngestSettings")
