"""Base classes of every error the SDK, the task engine and pyplugs raise."""


class BaseDioptraError(Exception):
    """The root of Dioptra's own errors."""


class BaseGenericsRegistryError(BaseDioptraError):
    """An error of the generic-function registry (``dioptra.sdk.generics``)."""


class BaseOptionalDependencyError(BaseDioptraError):
    """An optional package needed by a function is not installed."""


class BasePyPlugsException(BaseDioptraError):
    """An error of the task-plugin registry (``dioptra.pyplugs``)."""


class BaseTaskPluginError(BaseDioptraError):
    """An error raised by a task plugin."""


class BaseTaskEngineError(BaseDioptraError):
    """An error of the declarative task engine."""
