"""Domain logic, free of Flask: functions take a SQLAlchemy Session and plain values."""

from core import directory_version  # noqa: F401  (watches every Session for directory writes)
