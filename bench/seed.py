"""Seeds a user base into authhost's (migrated) SQLite database or into a database laid out as
the original's `users` table. Usage: seed.py authhost|original DB COUNT. User N has the e-mail
userN@bench.example (id = md5 of it, as both systems compute it)."""
import hashlib
import sqlite3
import sys

kind, path, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
db = sqlite3.connect(path)
if kind == "original":
    db.execute(
        "CREATE TABLE IF NOT EXISTS users (id VARCHAR(128) NOT NULL, provider_id VARCHAR(128), "
        "username VARCHAR NOT NULL, name VARCHAR, email VARCHAR, avatar_url VARCHAR(512), "
        "join_date DATETIME, PRIMARY KEY (id), UNIQUE (username))"
    )


def rows():
    for n in range(1, count + 1):
        email = f"user{n}@bench.example"
        uid = hashlib.md5(email.encode()).hexdigest()
        yield (uid, f"bench:{n}", f"user{n}", f"User {n}", email, None, "2026-01-01 00:00:00")


db.executemany(
    "INSERT INTO users (id, provider_id, username, name, email, avatar_url, join_date) VALUES (?,?,?,?,?,?,?)",
    rows(),
)
db.commit()
print(f"seeded {count} users into {path}")
