"""Dioptra v0's declarative task engine: experiments described in YAML.

Import the submodules: ``validation`` (``validate``, ``is_valid``), ``task_engine``
(``run_experiment``), ``issues``, ``types``, ``type_registry``, ``type_validation``,
``util``, ``error_message``; the console scripts are ``validate-experiment``
(``validate.main``) and ``run-experiment`` (``run_experiment.main``).
"""
