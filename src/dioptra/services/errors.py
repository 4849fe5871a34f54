"""Domain errors. restapi/errors.py maps each kind to an HTTP status, once."""


class ServiceError(Exception):
    """Base class; ``message`` is shown to the user as is."""

    status_code = 500
    prefix = ""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = f"{self.prefix}{message}"


class BadRequest(ServiceError):
    status_code = 400
    prefix = "Bad Request - "


class Unauthorized(ServiceError):
    status_code = 401


class Forbidden(ServiceError):
    status_code = 403
    prefix = "Forbidden - "


class NotFound(ServiceError):
    status_code = 404
    prefix = "Not Found - "


class Conflict(ServiceError):
    status_code = 409
    prefix = "Conflict - "


class BadGateway(ServiceError):
    status_code = 502
    prefix = "Bad Gateway - "


class ServiceUnavailable(ServiceError):
    status_code = 503
    prefix = "Service Unavailable - "
