"""One check for the text of every path, query and form parameter a route takes.

No route can take a parameter that no database stores (NUL, a lone surrogate): the
answer is a 400 naming the parameter, before the route runs. Parameters a route does
not declare are ignored, as the route ignores them. JSON bodies get the same rule from
``schemas.Body``.
"""

from __future__ import annotations

from fastapi import Request

from dioptra.services.names import check_text

_FORMS = ("multipart/form-data", "application/x-www-form-urlencoded")


async def storable_parameters(request: Request) -> None:
    for name, value in request.path_params.items():
        if isinstance(value, str):
            check_text(name, value)
    route = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    # The routes declare their parameters themselves (not in sub-dependencies).
    for field in dependant.query_params:
        for value in request.query_params.getlist(field.alias):
            check_text(field.alias, value)
    form_fields = {field.alias for field in dependant.body_params}
    if form_fields and request.headers.get("content-type", "").startswith(_FORMS):
        # FastAPI has parsed the route's form already: this reads its cached copy.
        form = await request.form()
        for name in form_fields:
            for value in form.getlist(name):
                if isinstance(value, str):
                    check_text(name, value)
