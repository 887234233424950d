"""Config for tortoise's CLI when writing a new migration (never imported by the server).

    rm -f /tmp/fn-schema.sqlite3 && .venv/bin/tortoise -c fedineighbour.storage.schema_config.TORTOISE_ORM \
        migrate && .venv/bin/tortoise -c fedineighbour.storage.schema_config.TORTOISE_ORM \
        makemigrations --name <what_changed>
"""

from fedineighbour.storage.database import tortoise_config

TORTOISE_ORM = tortoise_config("sqlite:///tmp/fn-schema.sqlite3")
