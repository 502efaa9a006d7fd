"""Each note remembers the release that stored it.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03

Expand only: a nullable column with no default, which the release still
serving during the switch (it knows nothing of the column) keeps writing
without it. Dropping or renaming a column waits for a later release, once
no running code reads it (contract).
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("notes", sa.Column("release", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("notes") as batch:
        batch.drop_column("release")
