"""Helping a family past a search that went wrong: emergency advisories and suggestions
added to a list (`search_guidance`), and filter values that name nothing refused with the
closest valid value (`check_filters`)."""

from __future__ import annotations

import difflib
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from core import geo, search
from core.advisories import advisories_for
from core.directory.query import ServiceFilters, ServiceQuery, category_term_ids
from core.errors import InvalidData
from models import Attribute, Service, ServiceAreaTown, TaxonomyTerm


def query_language(query: ServiceQuery) -> str:
    """The language to answer a search in: the one asked for, else the one its words are in."""
    if query.language:
        return query.language
    return search.parse(query.search).language if query.search else "en"


def search_guidance(session: Session, query: ServiceQuery, total: int) -> dict:
    """What a list envelope adds for a search: `advisories` (who to call now, core.advisories)
    when its words signal an emergency, and `suggestions` when nothing matched."""
    if not query.search:
        return {}
    out: dict = {}
    found = advisories_for(query.search, query_language(query))
    if found:
        out["advisories"] = found
    if total == 0:
        out["suggestions"] = suggestions(session, query)
    return out


def suggestions(session: Session, query: ServiceQuery) -> dict:
    """For a search that found nothing: `did_you_mean` (the query with each word the directory
    does not know replaced by the closest word it does, when one is close) and `categories`
    (broader categories to browse: the parents of the categories filtered on, else the
    top-level categories with active services), each {code, name}."""
    assert query.search  # asked for a search only (search_guidance)
    out: dict = {}
    parsed = search.parse(query.search)
    replaced, changed = [], False
    for word in search.normalise(query.search):
        wanted = word in parsed.content_words and word not in parsed.protected
        better = search.closest_word(session, word) if wanted else None
        replaced.append(better or word)
        changed = changed or better is not None
    if changed:
        out["did_you_mean"] = " ".join(replaced)
    term_ids = category_term_ids(session, query.filters)
    if term_ids:
        parent_ids = {
            p for p in session.scalars(select(TaxonomyTerm.parent_id).where(TaxonomyTerm.id.in_(term_ids))) if p
        }
        broader = select(TaxonomyTerm).where(TaxonomyTerm.id.in_(parent_ids))
    else:
        used = (
            select(Attribute.taxonomy_term_id)
            .join(Service, Service.id == Attribute.link_id)
            .where(Attribute.link_entity == "service", Service.status == "active")
        )
        tops = set()
        terms = {t.id: t for t in session.scalars(select(TaxonomyTerm))}
        for term_id in session.scalars(used.distinct()):
            current = terms.get(term_id)
            while current is not None and current.parent_id in terms:
                current = terms[current.parent_id]
            if current is not None:
                tops.add(current.id)
        broader = select(TaxonomyTerm).where(TaxonomyTerm.id.in_(tops))
    out["categories"] = [
        {"code": term.code, "name": term.name}
        for term in session.scalars(broader.order_by(TaxonomyTerm.name, TaxonomyTerm.id))
    ]
    return out


class _Refusals:
    """The filter values refused so far: messages by parameter, and the close valid values."""

    def __init__(self):
        self.messages: dict[str, list[str]] = {}
        self.close: dict[str, list[str]] = {}

    def refuse(self, name: str, value: str, choices: dict[str, str], what: str) -> None:
        """Refuse `value` of parameter `name`, naming the closest of `choices` (lower case to
        as written) when one is close."""
        match = difflib.get_close_matches(value.strip().lower(), list(choices), n=1, cutoff=0.75)
        self.messages.setdefault(name, []).append(
            f"Unknown {what}." + (f" Did you mean {choices[match[0]]}?" if match else "")
        )
        if match:
            self.close.setdefault(name, []).append(choices[match[0]])


def _check_towns(session: Session, towns: list[str], refusals: _Refusals) -> None:
    """A town is a Connecticut town or one a service area names."""
    known = {place.name.lower(): place.name for place in geo.towns().values()}
    unknown = [town for town in towns if town.strip().lower() not in known]
    if not unknown:
        return
    named = session.scalars(select(ServiceAreaTown.town).distinct()).all()
    known.update({town.lower(): town for town in named})
    for town in unknown:
        if town.strip().lower() not in known:
            refusals.refuse("town", town, known, "town (a Connecticut town or one a service area names)")


def _check_categories(session: Session, categories: list[str], refusals: _Refusals) -> None:
    """A category is a term's code or id."""
    codes = {
        code.lower(): code
        for code in session.scalars(select(TaxonomyTerm.code).where(TaxonomyTerm.code.is_not(None)))
        if code is not None  # none is: the query leaves them out (this tells the type checker)
    }
    ids = []
    for value in categories:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            if value.lower() not in codes:
                refusals.refuse("category", value, codes, "category code")
    if ids:
        found = set(session.scalars(select(TaxonomyTerm.id).where(TaxonomyTerm.id.in_(ids))))
        if set(ids) - found:
            refusals.messages.setdefault("category", []).append("No category has this id.")


def check_filters(session: Session, filters: ServiceFilters) -> None:
    """Refuse filter values that name nothing (`town=Hartfrod`, `category=occh-nope`,
    `postcode=99999`): InvalidData naming the parameter and, where one is close, the valid value
    (under `did_you_mean`), rather than an empty page a family cannot tell from "nothing serves you"."""
    refusals = _Refusals()
    if filters.towns:
        _check_towns(session, filters.towns, refusals)
    if filters.categories:
        _check_categories(session, filters.categories, refusals)
    for postcode in filters.postcodes:
        if geo.zip_place(postcode) is None:
            refusals.refuse("postcode", postcode[:5], {z: z for z in geo.zip_codes()}, "Connecticut ZIP code")
    if refusals.messages:
        errors: dict = {"query": refusals.messages}
        if refusals.close:
            errors["did_you_mean"] = refusals.close
        raise InvalidData("A filter names nothing in the directory; see errors.", errors)
