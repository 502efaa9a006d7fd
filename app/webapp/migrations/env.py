"""Alembic's environment for ``flask db``: the app's engine and models.

Online only: every migration of one ``upgrade`` runs in one transaction, so
on PostgreSQL (transactional DDL) a failing migration leaves the schema and
``alembic_version`` exactly as they were. SQLite commits some DDL on its own.
"""

from __future__ import annotations

from alembic import context
from flask import current_app

config = context.config


def run_migrations_online() -> None:
    migrate = current_app.extensions["migrate"]
    db = migrate.db

    def skip_empty_autogenerate(context, revision, directives) -> None:  # noqa: ANN001
        # `flask db migrate` with no model change writes no empty revision.
        if getattr(config.cmd_opts, "autogenerate", False) and directives[0].upgrade_ops.is_empty():
            directives[:] = []

    options = {"process_revision_directives": skip_empty_autogenerate, **migrate.configure_args}

    with db.engine.connect() as connection:
        context.configure(connection=connection, target_metadata=db.metadata, **options)

        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("Offline (--sql) migrations are not supported; run flask db upgrade against the database.")

run_migrations_online()
