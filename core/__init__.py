"""Domain logic, free of Flask: functions take a SQLAlchemy Session and plain values."""
