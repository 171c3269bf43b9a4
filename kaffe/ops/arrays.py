"""The array an op writes its result into: the caller's ``out``, checked,
or a new one."""

__all__ = ["out_array"]


def out_array(xp, out, shape, dtype, caller):
    """``out`` after checking that it is a C-contiguous ``dtype`` array of
    ``shape`` (a ValueError naming ``caller`` otherwise), or a new array
    (contents undefined) when ``out`` is None."""
    shape = tuple(shape)
    if out is None:
        return xp.empty(shape, dtype=dtype)
    if (tuple(out.shape) != shape or out.dtype != dtype
            or not out.flags.c_contiguous):
        raise ValueError(
            f"{caller}: out must be a C-contiguous {dtype} array of shape "
            f"{shape}, received {out.dtype} {tuple(out.shape)}"
            + ("" if out.flags.c_contiguous else " (not contiguous)"))
    return out
