"""python -m ragline_retriever"""

from ragline_core.server import run_service

if __name__ == "__main__":
    run_service("ragline_retriever.app:SPEC", "ragline_retriever.settings:RetrieverSettings")
