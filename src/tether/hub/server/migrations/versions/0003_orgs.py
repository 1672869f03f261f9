"""Organisations and their members: a namespace shared by users, each with a role.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "orgs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(96), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "org_members",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "org_pk", sa.Integer, sa.ForeignKey("orgs.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("user", sa.String(96), nullable=False),
        sa.Column("role", sa.String(8), nullable=False),
        sa.UniqueConstraint("org_pk", "user"),
    )
    op.create_index("ix_org_members_org_pk", "org_members", ["org_pk"])
    op.create_index("ix_org_members_user", "org_members", ["user"])


def downgrade() -> None:
    op.drop_table("org_members")
    op.drop_table("orgs")
