"""Containers: modules that hold other modules under the names "0", "1", ...

    Sequential(f_1, ..., f_k)(x) = f_k( ... f_2(f_1(x)) ... )

``ModuleList`` holds modules without a forward of its own (the owner decides how
to call them, e.g. one block per resolution in Progressive GAN); it exists so
that the modules in a Python list are registered, and their parameters found.
"""
from collections import OrderedDict

from .module import Module


class _IndexedModules(Module):
    """Shared by Sequential and ModuleList: indexing, len, iteration, append."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def _index(self, i):
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"{type(self).__name__}: index {i} is out of range for {n} modules")
        return i % n

    def __getitem__(self, i):
        values = list(self._modules.values())
        if isinstance(i, slice):
            return type(self)(values[i])
        return values[self._index(i)]

    def __setitem__(self, i, module):
        key = list(self._modules)[self._index(i)]
        self.add_module(key, module)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}.append: expected a Module, got {type(module).__name__}")
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self


class Sequential(_IndexedModules):
    """Modules applied one after another: ``Sequential(Linear(2, 8), ReLU(), Linear(8, 1))``.

    Also accepts one ``OrderedDict`` of name -> module, to choose the names.
    """

    def __init__(self, *modules):
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            Module.__init__(self)
            for name, m in modules[0].items():
                if not isinstance(m, Module):
                    raise TypeError(f"Sequential: entry '{name}' is a {type(m).__name__}, not a Module")
                self.add_module(name, m)
            return
        if len(modules) == 1 and isinstance(modules[0], list):
            modules = modules[0]  # Sequential(list_of_modules), used by slicing
        super().__init__(modules)

    def forward(self, x):
        for m in self:
            x = m(x)
        return x


class ModuleList(_IndexedModules):
    """A list of registered modules: ``ModuleList([Linear(4, 4) for _ in range(3)])``."""

    def __init__(self, modules=None):
        super().__init__(() if modules is None else modules)

    def forward(self, *args, **kwargs):
        raise NotImplementedError("ModuleList has no forward; iterate over it and call its modules")
