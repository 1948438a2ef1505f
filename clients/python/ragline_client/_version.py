"""The SDK's version: its major version is the API's (v1)."""

__version__ = "1.0.0"
API_VERSION = "v1"
