"""Builtin task plugins of the testbed (PyTorch, scikit-learn and ART; pixels in [0, 1]).

Each sub-package groups plugin modules; each public function is registered with
:func:`dioptra.pyplugs.register` and is called from entry points as
``pyplugs.call("dioptra_builtins.<package>", "<module>", "<function>", ...)``.
"""
