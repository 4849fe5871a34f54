"""The Dioptra worker: claims jobs from the server over HTTP and runs each one.

Modules: ``runner`` (process group, timeout, output streaming), ``execute`` (one whole
job), ``api`` (HTTP client of the worker API), ``main`` (the worker loop and
``python -m dioptra.worker``), ``rq_task`` (the function RQ work horses run). The
MLproject spec the worker validates is shared with the server: ``dioptra.contract``.
"""
