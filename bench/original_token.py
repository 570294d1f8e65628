"""A user token of the original for user1: HS256 keyed with sha256 of PRIVATE_KEY, {userid, exp}."""
import hashlib
import os
import time

import jwt

key = hashlib.sha256(os.environ["PRIVATE_KEY"].encode("utf-8")).digest()
uid = hashlib.md5(b"user1@bench.example").hexdigest()
print(jwt.encode({"userid": uid, "exp": int(time.time()) + 86400}, key, algorithm="HS256"))
