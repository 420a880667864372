"""Pointing a framework's module attributes at our classes and back (the opt-in
``install_*_reporter`` functions of chainer_compat and ppe.reporter)."""


class ClassSwap:
    """``targets()`` lists ``(module, name, ours)``; it is called only on ``install()``,
    so the framework is imported only then. Installing twice does nothing; uninstalling
    restores what was there before the first install."""

    def __init__(self, targets):
        self._targets = targets
        self._originals = None  # {(module, name): original} while installed

    def install(self):
        if self._originals is not None:
            return
        targets = self._targets()
        self._originals = {(module, name): getattr(module, name) for module, name, _ in targets}
        for module, name, ours in targets:
            setattr(module, name, ours)

    def uninstall(self):
        if self._originals is None:
            return
        for (module, name), original in self._originals.items():
            setattr(module, name, original)
        self._originals = None
