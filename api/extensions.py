"""The Flask extensions, created unbound and bound by create_app."""
from flask_cors import CORS
from flask_migrate import Migrate
from flask_smorest import Api
from flask_sqlalchemy import SQLAlchemy

from models import Base

db = SQLAlchemy(model_class=Base)
migrate = Migrate()
cors = CORS()
api = Api()
