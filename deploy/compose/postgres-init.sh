#!/bin/sh
# One login role and one schema per service, run once by the postgres image on an empty volume.
# Each role owns its schema and nothing else: no service can read or write another's tables.
# Development passwords only: compose is the laptop stack, production roles are made by the
# database operators (deploy/README.md).
set -eu

for service in registry scoring alerts matching; do
    password="${ZHONGFU_DB_PASSWORD:-zhongfu-dev}"
    psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
        -v role="$service" -v password="$password" -v db="$POSTGRES_DB" <<'SQL'
CREATE ROLE :"role" LOGIN PASSWORD :'password';
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"role";
CREATE SCHEMA AUTHORIZATION :"role";
ALTER ROLE :"role" SET search_path = :"role";
SQL
done

# Nobody but the owner connects, and nobody creates objects in public.
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -v db="$POSTGRES_DB" <<'SQL'
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
SQL
