"""Per-service Postgres roles (tooling.roles), applied to a scratch database and exercised for real.

Each role logs in as itself: it reads every table, writes its own and the shared ones, and
gets "permission denied" writing another service's table.
"""

import uuid

import psycopg
import pytest
from psycopg import errors

from shared.db import libpq_url
from shared.models import OWNERSHIP, SHARED
from tooling import migrate
from tooling.roles import SERVICES, drop_roles_sql, role_name, roles_sql


@pytest.fixture(scope="module")
def roles_db(scratch_database):
    url = scratch_database()
    migrate.upgrade(url, "head")
    prefix = f"t{uuid.uuid4().hex[:6]}_"
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(roles_sql(prefix=prefix))
        conn.execute(roles_sql(prefix=prefix))  # idempotent: a second deploy changes nothing
    yield url, prefix
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute(drop_roles_sql(prefix=prefix))


def as_role(url: str, role: str) -> psycopg.Connection:
    info = psycopg.conninfo.conninfo_to_dict(libpq_url(url))
    info["user"] = role
    info.pop("password", None)
    return psycopg.connect(**info)


def test_the_privilege_matrix_matches_ownership_exactly(roles_db):
    url, prefix = roles_db
    with psycopg.connect(libpq_url(url)) as conn:
        for service in SERVICES:
            role = role_name(service, prefix)
            for table, owner in OWNERSHIP.items():
                may_write = owner in (service, SHARED)
                for privilege in ("INSERT", "UPDATE", "DELETE"):
                    has = conn.execute(
                        "SELECT has_table_privilege(%s, %s, %s)", (role, table, privilege)
                    ).fetchone()[0]
                    assert has is may_write, (role, table, privilege)
                assert conn.execute(
                    "SELECT has_table_privilege(%s, %s, 'SELECT')", (role, table)
                ).fetchone()[0]
                assert not conn.execute(
                    "SELECT has_table_privilege(%s, %s, 'TRUNCATE')", (role, table)
                ).fetchone()[0]


@pytest.mark.parametrize("service", SERVICES)
def test_a_role_cannot_write_another_services_table(roles_db, service):
    url, prefix = roles_db
    foreign = sorted(t for t, o in OWNERSHIP.items() if o not in (service, SHARED))
    own = sorted(t for t, o in OWNERSHIP.items() if o == service)
    with as_role(url, role_name(service, prefix)) as conn:
        for table in [*own, "events"]:
            conn.execute(f"DELETE FROM {table} WHERE false")  # allowed: no error
            conn.execute(f"SELECT count(*) FROM {table}")
        for table in foreign:
            with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
                conn.execute(f"DELETE FROM {table} WHERE false")
            conn.execute(f"SELECT count(*) FROM {table}")  # reading is fine


def test_identity_deleting_a_user_still_cascades_into_other_services_rows(roles_db):
    """Cascades run as the referencing table's owner, so least privilege keeps the cascade."""
    url, prefix = roles_db
    clerk = f"user_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(libpq_url(url), autocommit=True) as admin:
        user_id = admin.execute(
            "INSERT INTO users (user_id) VALUES (%s) RETURNING id", (clerk,)
        ).fetchone()[0]
        admin.execute("INSERT INTO campaigns (user_id, name) VALUES (%s, 'c')", (user_id,))
    with as_role(url, role_name("identity", prefix)) as conn:
        with pytest.raises(errors.InsufficientPrivilege), conn.transaction():
            conn.execute("DELETE FROM campaigns WHERE user_id = %s", (user_id,))
        conn.execute("DELETE FROM users WHERE id = %s", (user_id,))
        conn.commit()
    with psycopg.connect(libpq_url(url)) as admin:
        left = admin.execute("SELECT count(*) FROM campaigns WHERE user_id = %s", (user_id,))
        assert left.fetchone()[0] == 0


def test_generated_sql_covers_every_table_and_sets_passwords_when_given():
    sql = roles_sql(passwords={"billing": "s3cr'et"})
    for table in OWNERSHIP:
        assert f'"public"."{table}"' in sql
    assert "ALTER ROLE \"scout_billing\" LOGIN PASSWORD 's3cr''et';" in sql
    assert "scout_identity" in sql and "PASSWORD" not in sql.split("scout_identity")[1][:40]
