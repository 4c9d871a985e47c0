"""Chalice entry point (Chalice requires ``app`` in app.py at the project root).

Lambda handlers are named after this module: the API is ``app.app`` and the scheduled sweeper is
``app.sweep_sessions``, so both must be importable from here.
"""

from chalice_app.application import app, sweep_sessions

__all__ = ["app", "sweep_sessions"]
