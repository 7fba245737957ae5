"""An object whose unpickling is recorded: proof that a file was (or was not) unpickled."""

TRIPPED: list[bool] = []
"""Gets an entry each time a :class:`Tripwire` is unpickled."""


def trip() -> None:
    TRIPPED.append(True)


class Tripwire:
    """Pickles to a call of :func:`trip`."""

    def __reduce__(self):
        return (trip, ())
