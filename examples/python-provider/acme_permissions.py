"""A permission provider in dgp-oauth2's shape: authhost runs it unchanged through its Python
bridge. `ALLOWED_SERVICES="datasets:acme_permissions"` names it; `get_permissions` gets the
alias that was asked for and the user's id, and answers a dict of JSON values.
"""
import logging
import os

log = logging.getLogger(__name__)

# Settings come from the environment, as the original's modules read them (authhost's own
# AUTHHOST_*, PG*, GITHUB_*, GOOGLE_* and key variables never reach a plugin's worker).
ADMINS = {u.strip() for u in os.environ.get("ACME_ADMINS", "").split(",") if u.strip()}


def get_permissions(service, userid):
    permissions = {"read": True, "service": service}
    if userid in ADMINS:
        permissions["write"] = True
        log.info("admin %s on %s", userid, service)
    return permissions
