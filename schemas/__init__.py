"""marshmallow schemas: request arguments and response shapes. No database access."""
