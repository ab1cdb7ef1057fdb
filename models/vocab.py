"""Controlled vocabularies shared by the models, the schemas and the domain logic."""

SERVICE_STATUSES = ("active", "inactive", "defunct", "temporarily closed")
LOCATION_TYPES = ("physical", "postal", "virtual")
CONTACT_CHANNELS = ("phone", "email", "web", "fax", "in_person")
CONTACT_AUDIENCES = ("families", "health_care_providers", "community_partners")
CONTACT_PURPOSES = ("referral", "information", "advocacy")
PHONE_TYPES = ("text", "voice", "fax", "cell", "video", "pager", "textphone")

# Referrals: HL7 FHIR Task.status codes, as the Gravity Project SDOH Clinical Care guide uses them.
REFERRAL_STATUSES = (
    "requested",
    "accepted",
    "rejected",
    "in-progress",
    "on-hold",
    "completed",
    "failed",
    "cancelled",
    "entered-in-error",
)
URGENCIES = ("routine", "urgent", "asap", "stat")
GUARDIAN_RELATIONSHIPS = (
    "mother",
    "father",
    "parent",
    "grandparent",
    "foster-parent",
    "legal-guardian",
    "relative",
    "other",
)
CONTACT_PREFERENCES = ("phone", "text", "email", "none")
CONSENT_METHODS = ("verbal", "written", "electronic")
SCOPES = ("referrals:submit", "referrals:manage", "directory:write", "directory:admin")
# The Gravity Project SDOH capacity codes a service's availability is one of.
CAPACITY_STATUSES = ("capacity", "no-capacity", "waitlist", "additional-assessment-required")
WEBHOOK_EVENTS = ("referral.created", "referral.status_changed", "referral.erased")
