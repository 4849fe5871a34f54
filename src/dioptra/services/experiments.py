"""Experiments: a name in our database and an experiment in MLflow with the same id."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from dioptra.db.models import Experiment, utcnow
from dioptra.services.errors import BadRequest, NotFound
from dioptra.services.names import check_name, flush_named, name_taken, slugify
from dioptra.services.tracking import Tracking

NOT_FOUND = "The requested experiment does not exist"


def list_experiments(session: Session) -> list[Experiment]:
    query = select(Experiment).where(~Experiment.is_deleted).order_by(Experiment.experiment_id)
    return list(session.scalars(query))


def get_by_id(session: Session, experiment_id: int) -> Experiment:
    experiment = session.get(Experiment, experiment_id)
    if experiment is None or experiment.is_deleted:
        raise NotFound(NOT_FOUND)
    return experiment


def find_by_name(session: Session, name: str) -> Experiment | None:
    query = select(Experiment).where(Experiment.name == slugify(name), ~Experiment.is_deleted)
    return session.scalars(query).first()


def get_by_name(session: Session, name: str) -> Experiment:
    experiment = find_by_name(session, name)
    if experiment is None:
        raise NotFound(NOT_FOUND)
    return experiment


def _check_free(session: Session, name: str) -> None:
    if find_by_name(session, name) is not None:
        raise BadRequest(name_taken("experiment"))


def create(session: Session, tracking: Tracking, name: str) -> Experiment:
    name = check_name("experiment", name)
    _check_free(session, name)
    experiment_id = tracking.create_experiment(name)
    now = utcnow()
    experiment = Experiment(
        experiment_id=experiment_id, name=name, created_on=now, last_modified=now
    )
    session.add(experiment)
    flush_named(session, "experiment")
    return experiment


def rename(session: Session, tracking: Tracking, experiment_id: int, name: str) -> Experiment:
    experiment = get_by_id(session, experiment_id)
    name = check_name("experiment", name)
    if name != experiment.name:
        _check_free(session, name)
        tracking.rename_experiment(experiment.experiment_id, name)
        experiment.name = name
    experiment.last_modified = utcnow()
    flush_named(session, "experiment")
    return experiment


def delete(session: Session, tracking: Tracking, experiment: Experiment | None) -> list:
    """Soft delete; returns the ids deleted (empty when there was nothing to delete)."""
    if experiment is None or experiment.is_deleted:
        return []
    tracking.delete_experiment(experiment.experiment_id, experiment.name)
    experiment.is_deleted = True
    experiment.last_modified = utcnow()
    return [experiment.experiment_id]
