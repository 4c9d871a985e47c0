"""Tooling around the runtime: the local stack, the CLI, deployment and the built-in AI driver.

Installed with the project, never zipped into the Lambda: ``app.py``'s handlers import only
``chalice_app`` and ``web_py``.
"""
