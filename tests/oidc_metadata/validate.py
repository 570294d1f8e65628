"""Validates authhost's provider metadata with a third party's validators: Authlib's (the
original dgp-oauth2's own OAuth library) OpenID Connect Discovery and RFC 8414 checks, every
field they know. Reads the document fetched from `/auth/.well-known/openid-configuration` and
`/.well-known/oauth-authorization-server/auth` (paths given as arguments); exits non-zero,
naming the field, on the first problem."""
import json
import sys

from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata

openid, rfc8414, issuer = sys.argv[1:]
for path, kind in ((openid, OpenIDProviderMetadata), (rfc8414, AuthorizationServerMetadata)):
    with open(path) as f:
        doc = json.load(f)
    kind(doc).validate()
    assert doc["issuer"] == issuer, (doc["issuer"], issuer)
    print(f"{kind.__name__}: valid ({len(doc)} fields, issuer {doc['issuer']})")
