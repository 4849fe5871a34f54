"""Schemathesis hooks for the fuzzing run in test_api_inputs.py (SCHEMATHESIS_HOOKS).

A claim waits up to `wait` seconds (at most 30) for a job that never comes in that run:
waits are kept short so that the time goes to more cases, not to waiting.
"""

import schemathesis

MAX_FUZZ_WAIT_S = 0.2


@schemathesis.hook("map_body")
def short_claims(ctx, body):
    wait = body.get("wait") if isinstance(body, dict) else None
    if isinstance(wait, int | float) and not isinstance(wait, bool) and wait > MAX_FUZZ_WAIT_S:
        return {**body, "wait": MAX_FUZZ_WAIT_S}
    return body
