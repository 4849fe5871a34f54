"""What both sides of the wire share: the server (``services/``, ``restapi/``) and the
worker (``worker/``) import this package; it imports neither.

Modules: ``status`` (the job status enum), ``messages`` (the job spec and the worker
messages as typed models), ``mlproject`` (the MLproject spec: parse, validate, command),
``pipeline`` (the pipeline format: parse, validate, expand grids, resolve references).
"""
