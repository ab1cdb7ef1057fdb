"""Facet counts of a service list: by category, program, language and town, each counted
under every filter but its own."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased

from core.directory.query import ServiceQuery, matching_service_ids
from models import Attribute, Language, Program, Service, ServiceArea, ServiceAreaTown, TaxonomyTerm


def _category_counts(session: Session, ids) -> list[dict]:
    """Services by category, each category also counting the services of the categories below it."""
    closure = select(TaxonomyTerm.id.label("term_id"), TaxonomyTerm.id.label("ancestor_id")).cte(
        "term_closure", recursive=True
    )
    parent = aliased(TaxonomyTerm)
    closure = closure.union_all(
        select(closure.c.term_id, parent.parent_id)
        .join(parent, parent.id == closure.c.ancestor_id)
        .where(parent.parent_id.is_not(None))
    )
    rows = session.execute(
        select(TaxonomyTerm.code, TaxonomyTerm.id, TaxonomyTerm.name, func.count(func.distinct(Attribute.link_id)))
        .join(closure, closure.c.term_id == Attribute.taxonomy_term_id)
        .join(TaxonomyTerm, TaxonomyTerm.id == closure.c.ancestor_id)
        .where(Attribute.link_entity == "service", Attribute.link_id.in_(ids))
        .group_by(TaxonomyTerm.code, TaxonomyTerm.id, TaxonomyTerm.name)
    ).all()
    return [{"value": code, "id": str(tid), "name": tname, "count": n} for code, tid, tname, n in rows]


def _program_counts(session: Session, ids) -> list[dict]:
    """Services by program."""
    rows = session.execute(
        select(Program.slug, Program.id, Program.name, func.count(Service.id))
        .join(Service, Service.program_id == Program.id)
        .where(Service.id.in_(ids))
        .group_by(Program.slug, Program.id, Program.name)
    ).all()
    return [{"value": slug, "id": str(pid), "name": pname, "count": n} for slug, pid, pname, n in rows]


def _language_counts(session: Session, ids) -> list[dict]:
    """Services by language code (lower case)."""
    rows = session.execute(
        select(func.lower(Language.code), func.count(func.distinct(Language.service_id)))
        .where(Language.service_id.in_(ids))
        .group_by(func.lower(Language.code))
    ).all()
    return [{"value": code, "count": n} for code, n in rows]


def _town_counts(session: Session, ids) -> list[dict]:
    """Services by named town, each town also covered by every statewide service and every
    service that states no area (the coverage rule, see `query.criteria`); and `statewide`."""
    statewide = select(ServiceArea.service_id).where(ServiceArea.statewide.is_(True), ServiceArea.service_id.in_(ids))
    n_statewide = session.execute(
        select(func.count(func.distinct(ServiceArea.service_id))).where(
            ServiceArea.statewide.is_(True), ServiceArea.service_id.in_(ids)
        )
    ).scalar_one()
    named = select(ServiceArea.service_id).join(ServiceAreaTown, ServiceAreaTown.service_area_id == ServiceArea.id)
    n_unstated = session.execute(
        select(func.count(Service.id)).where(
            Service.id.in_(ids), Service.id.not_in(statewide), Service.id.not_in(named)
        )
    ).scalar_one()
    rows = session.execute(
        select(ServiceAreaTown.town, func.count(func.distinct(ServiceArea.service_id)))
        .join(ServiceArea, ServiceArea.id == ServiceAreaTown.service_area_id)
        .where(ServiceArea.service_id.in_(ids), ServiceArea.service_id.not_in(statewide))
        .group_by(ServiceAreaTown.town)
    ).all()
    values = [{"value": town, "count": n + n_statewide + n_unstated} for town, n in rows]
    if n_statewide:
        values.append({"value": "statewide", "count": n_statewide})
    return values


# The counts of each facet; any other name is the town facet (the arguments allow no other).
COUNTS = {"category": _category_counts, "program": _program_counts, "language": _language_counts}


def facet_counts(session: Session, query: ServiceQuery) -> dict:
    """Counts of matching services by category, town, language and program. Each facet's
    counts respect every filter but its own, so a coordinator sees what each choice would give."""
    out: dict = {}
    for name in query.facets:
        ids = matching_service_ids(session, query, skip=name)
        values = COUNTS.get(name, _town_counts)(session, ids)
        out[name] = sorted((v for v in values if v["count"]), key=lambda v: (-v["count"], v["value"]))
    return out
