"""Controlled vocabularies shared by the models, the schemas and the domain logic."""

SERVICE_STATUSES = ("active", "inactive", "defunct", "temporarily closed")
LOCATION_TYPES = ("physical", "postal", "virtual")
CONTACT_CHANNELS = ("phone", "email", "web", "fax", "in_person")
CONTACT_AUDIENCES = ("families", "health_care_providers", "community_partners")
CONTACT_PURPOSES = ("referral", "information", "advocacy")
PHONE_TYPES = ("text", "voice", "fax", "cell", "video", "pager", "textphone")
