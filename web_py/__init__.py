"""Python that runs in the browser (Pyodide) and, unchanged, on the server and in tests.

Standard library only, no I/O: messages in, decisions out.
"""
