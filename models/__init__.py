"""SQLAlchemy 2.0 models of the directory, following Open Referral HSDS 3.0.

No Flask import here: the web layer binds these models to its session.
"""

from models.base import Base, UTCDateTime, new_id, utcnow
from models.curation import RecordHistory
from models.directory import (
    Address,
    Attribute,
    Contact,
    Language,
    Location,
    Organization,
    Phone,
    Program,
    ReferralContactPoint,
    Schedule,
    Service,
    ServiceArea,
    ServiceAreaTown,
    ServiceAtLocation,
)
from models.referrals import (
    ApiClient,
    ApiClientProgram,
    AuditEntry,
    DeliveryAttempt,
    IdempotencyKey,
    Referral,
    ReferralEvent,
    WebhookDelivery,
    WebhookSubscription,
)
from models.search import SearchChange, SearchWord, SearchWordVariant, ServicePoint, ServiceSearch
from models.staff import StaffUser
from models.taxonomy import Taxonomy, TaxonomyTerm
from models.version import DirectoryVersion

__all__ = [
    "ApiClient",
    "ApiClientProgram",
    "AuditEntry",
    "DeliveryAttempt",
    "IdempotencyKey",
    "Referral",
    "ReferralEvent",
    "WebhookDelivery",
    "WebhookSubscription",
    "Address",
    "Attribute",
    "Base",
    "Contact",
    "DirectoryVersion",
    "Language",
    "Location",
    "Organization",
    "Phone",
    "Program",
    "RecordHistory",
    "ReferralContactPoint",
    "Schedule",
    "SearchChange",
    "SearchWord",
    "SearchWordVariant",
    "Service",
    "ServiceArea",
    "ServiceAreaTown",
    "ServiceAtLocation",
    "ServicePoint",
    "ServiceSearch",
    "StaffUser",
    "Taxonomy",
    "TaxonomyTerm",
    "UTCDateTime",
    "new_id",
    "utcnow",
]
