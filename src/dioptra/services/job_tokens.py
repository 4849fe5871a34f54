"""Credentials scoped to one job: what its entry point gets to reach MLflow.

A job token names its job and carries an HMAC of that name keyed with the server's API
token, so it cannot be forged and the API token cannot be recovered from it. It is worth
something only while its job has not ended (checked in the database on use), and only
for MLflow (restapi/auth.py): never for the API.
"""

from __future__ import annotations

import hashlib
import hmac

from sqlalchemy import select

from dioptra.contract.status import ENDED_STATUSES
from dioptra.db.models import Job
from dioptra.services.context import ServiceContext

PREFIX = "dj1."


def issue(secret: str, job_id: str) -> str:
    return f"{PREFIX}{job_id}.{_mac(secret, job_id)}"


def for_job(ctx: ServiceContext, job_id: str) -> str | None:
    """The token a claimed job's entry point gets: only when the API has a token and MLflow
    is the server's own (an external MLflow knows nothing of ours)."""
    settings = ctx.settings
    if not settings.api_token or settings.mlflow_tracking_uri:
        return None
    return issue(settings.api_token, job_id)


def job_id_of(secret: str, token: str) -> str | None:
    """The job the token was issued for, None when it is not a genuine job token."""
    if not token.startswith(PREFIX):
        return None
    job_id, _, mac = token[len(PREFIX):].rpartition(".")
    if not job_id or not hmac.compare_digest(mac.encode(), _mac(secret, job_id).encode()):
        return None
    return job_id


def is_active(ctx: ServiceContext, job_id: str) -> bool:
    """True while the job is claimed by a worker and has not ended."""
    with ctx.db.session() as session:
        row = session.execute(
            select(Job.status, Job.claimed_by).where(Job.job_id == job_id)
        ).first()
    return row is not None and row.claimed_by is not None and row.status not in ENDED_STATUSES


def _mac(secret: str, job_id: str) -> str:
    message = b"dioptra job token\0" + job_id.encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
