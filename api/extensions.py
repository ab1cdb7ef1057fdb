"""The Flask extensions, created unbound and bound by create_app."""

from flask_cors import CORS
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy

from models import Base
from schemas.errors import ErrorSchema

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
cors = CORS()


class DirectoryApi(Api):
    """Errors are documented per operation and status (api/limits.py adds the envelope to
    each), so no catch-all `default` response hides an undocumented status."""

    ERROR_SCHEMA = ErrorSchema
    DEFAULT_ERROR_RESPONSE_NAME = None


api = DirectoryApi()
