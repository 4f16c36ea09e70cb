"""The local management web UI and REST API (/api/v1), plus /healthz and /metrics.

``WebService(app)`` is the supervised service; ``create_app(app)`` builds the aiohttp
application on its own (tests, or embedding under another server).
"""

from .server import WebService, create_app
from .settings import WebSettings

__all__ = ["WebService", "WebSettings", "create_app"]
