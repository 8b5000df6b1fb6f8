"""The HTTP edge and CLI: Flask app factory, auth, one error envelope, OpenAPI, pages."""

from api.app import create_app

__all__ = ["create_app"]
