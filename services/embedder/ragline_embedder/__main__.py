"""python -m ragline_embedder"""

from ragline_core.server import run_service

if __name__ == "__main__":
    run_service("ragline_embedder.app:SPEC", "ragline_embedder.settings:EmbedderSettings")
