"""Re-exports the weight locator, which lives in the core library (ingest uses it too)."""

from ragline_core.model_files import (
    CACHE_ENV,
    REQUIRED_FILES,
    WEIGHTS_PACKAGE,
    ModelUnavailableError,
    default_cache_dir,
    find_model_dir,
)

__all__ = [
    "CACHE_ENV",
    "REQUIRED_FILES",
    "WEIGHTS_PACKAGE",
    "ModelUnavailableError",
    "default_cache_dir",
    "find_model_dir",
]
