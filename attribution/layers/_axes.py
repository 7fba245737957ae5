"""Axis bookkeeping between batched tensors and single instances."""


def batched_dim(dim: int) -> int:
    """Turn an axis index of one instance into the axis index of the batched tensor."""
    return dim + 1 if dim >= 0 else dim


def instance_dim(dim: int, rank: int) -> int:
    """Turn an axis index of a batched tensor of ``rank`` axes into one of a single instance.

    Raises ValueError for the batch axis.
    """
    dim = dim + rank if dim < 0 else dim
    if dim == 0:
        raise ValueError("operations along the batch axis cannot be converted")
    return dim - 1
