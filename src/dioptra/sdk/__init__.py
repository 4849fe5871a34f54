"""The ``dioptra.sdk`` names that Dioptra v0 entry points and task plugins import.

Only what v0 workflows use is here (reference: task-engine.md §5): exceptions,
``utilities`` (contexts, logging, decorators, paths) and the ``generics``.
"""
