"""The ASGI app for uvicorn (``uvicorn app.asgi:app``) and the ``litestar`` CLI."""

from app.factory import create_app

app = create_app()
