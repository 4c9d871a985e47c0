"""Chalice entry point (Chalice requires ``app`` in app.py at the project root)."""

from chalice_app.application import app

__all__ = ["app"]
