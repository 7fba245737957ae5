"""Exceptions users can catch."""


class UnsupportedLayerError(TypeError):
    """A model contains a module or operation the converter cannot map to a known layer.

    Attributes
    ----------
    path : str
        Where it is: the module path (``"features.3"``) or the traced node name.
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
