"""Search over models, recipes and hyper-parameters; Pareto fronts and recommendations.

``steelyard.search`` is both this package and the verb :func:`steelyard.search.search_run.search`:
once any submodule is imported, Python binds the package to the ``search`` attribute of
``steelyard``, which would hide a function of that name. So the package itself is callable and
hands the call to the verb: ``sy.search(handle, data, SearchConfig(...))`` and
``import steelyard.search.space`` both work, whichever comes first.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any


class _CallablePackage(ModuleType):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from steelyard.search.search_run import search

        return search(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
