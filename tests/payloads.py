"""A stand-in for a malicious pickle payload, shared by the tests that prove no file the project reads runs code."""

from __future__ import annotations


class RunsCode:
    """Unpickling this would create the file at ``path``: a test asserts that file never appears."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))
