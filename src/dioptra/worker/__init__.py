"""The Dioptra worker: claims jobs from the server over HTTP and runs each one.

Modules: ``mlproject`` (MLproject parsing/validation/command), ``runner`` (process group,
timeout, output streaming), ``execute`` (one whole job), ``api`` (HTTP client of the
worker API), ``main`` (the worker loop and ``python -m dioptra.worker``).
"""
