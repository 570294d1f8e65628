"""The original dgp-oauth2 1.3.4 as its hosts ran it: the blueprint mounted at /auth/ in a Flask
app with flask-cors and a cache (budgetkey-api's setup), served by gunicorn."""
import os

from cachelib import SimpleCache
from flask import Flask
from flask_cors import CORS

from dgp_oauth2 import make_blueprint

app = Flask(__name__)
CORS(app, supports_credentials=True)
app.register_blueprint(
    make_blueprint(os.environ["EXTERNAL_ADDRESS"], SimpleCache(), db_connection_string=os.environ["DATABASE_URL"]),
    url_prefix="/auth/",
)
