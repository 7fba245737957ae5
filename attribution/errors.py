"""Exceptions users can catch."""


class UnsupportedLayerError(TypeError, ValueError):
    """A model contains a module or operation the converter cannot map to a known layer,
    or one with options it does not support (a ``TypeError`` and, for those who catch the
    converter's bad-input errors, a ``ValueError``).

    Attributes
    ----------
    path : str
        Where it is: the module path (``"features.3"``; for a function, the module whose
        forward calls it), or the traced node name of a function outside any module.
    type_name : str
        The module type or function name.
    """

    def __init__(self, message: str, path: str, type_name: str) -> None:
        super().__init__(message)
        self.path = path
        self.type_name = type_name


class MissingDependencyError(ImportError):
    """Reading a file needs an optional package that is not installed; the message names
    the package and the ``pip install`` command of the extra that brings it."""
