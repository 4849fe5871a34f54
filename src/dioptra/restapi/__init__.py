"""HTTP only: the app factory, one router per resource, and the error mapping."""
