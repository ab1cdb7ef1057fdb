"""Reading the directory: lists with HSDS filters, and single records by id.

The package, by part:

- `query`: what a service list asks for (`ServiceFilters`, `ServiceQuery`) and how it is
  answered (`plan`: index criteria and row conditions; ids, ordered rows, pages, totals).
- `services`: services and services at locations (pages, streams, records).
- `facets`: facet counts of a service list.
- `guidance`: advisories and suggestions for a search, and filter values refused.
- `records`: locations, organizations, programs, taxonomies, terms, referral contact points.
- `loading`: loader options and the batch readers the others share.
"""

from __future__ import annotations

from core.directory.facets import facet_counts
from core.directory.guidance import check_filters, query_language, search_guidance, suggestions
from core.directory.loading import BRIEF_SERVICE, FULL_LOCATION, FULL_SERVICE
from core.directory.query import (
    ServiceFilters,
    ServiceQuery,
    criteria,
    matching_service_ids,
    plan,
    row_conditions,
    search_point,
    term_and_descendants,
)
from core.directory.records import (
    ContactPointFilters,
    TermFilters,
    get_location,
    get_organization,
    get_program,
    get_taxonomy,
    get_taxonomy_term,
    list_locations,
    list_organizations,
    list_programs,
    list_referral_contact_points,
    list_taxonomies,
    list_taxonomy_terms,
    stream_organizations,
    stream_taxonomies,
    stream_taxonomy_terms,
)
from core.directory.services import (
    get_service,
    get_service_at_location,
    list_service_at_locations,
    list_services,
    service_rows,
    stream_service_at_locations,
    stream_services,
)

__all__ = [
    "BRIEF_SERVICE",
    "FULL_LOCATION",
    "FULL_SERVICE",
    "ContactPointFilters",
    "ServiceFilters",
    "ServiceQuery",
    "TermFilters",
    "check_filters",
    "criteria",
    "facet_counts",
    "get_location",
    "get_organization",
    "get_program",
    "get_service",
    "get_service_at_location",
    "get_taxonomy",
    "get_taxonomy_term",
    "list_locations",
    "list_organizations",
    "list_programs",
    "list_referral_contact_points",
    "list_service_at_locations",
    "list_services",
    "list_taxonomies",
    "list_taxonomy_terms",
    "matching_service_ids",
    "plan",
    "query_language",
    "row_conditions",
    "search_guidance",
    "search_point",
    "service_rows",
    "stream_organizations",
    "stream_service_at_locations",
    "stream_services",
    "stream_taxonomies",
    "stream_taxonomy_terms",
    "suggestions",
    "term_and_descendants",
]
