"""python -m ragline_chat"""

from ragline_core.server import run_service

if __name__ == "__main__":
    run_service("ragline_chat.app:SPEC", "ragline_chat.settings:ChatSettings")
