"""tuohu's HTTP interface (FastAPI): one POST route per use case, GET routes for state and read models.

Run with ``uvicorn --factory interfaces.api:create_app``; nothing connects to a
database until the application starts.
"""

from interfaces.api.main import create_app

__all__ = ["create_app"]
