"""The reading service: OpenAI-compatible streaming speech over HTTP (`reader serve`), see app.py."""

from .app import ServiceSettings, create_app

__all__ = ["ServiceSettings", "create_app"]
