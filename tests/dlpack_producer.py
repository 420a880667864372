"""A stand-in for producers that speak only DLPack (as JAX arrays do), shared by the tests."""


class DLPackOnly:
    """Wraps an array and exposes nothing but ``__dlpack__`` and ``__dlpack_device__``."""

    def __init__(self, array):
        self._a = array

    def __dlpack__(self, **kwargs):
        return self._a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._a.__dlpack_device__()
