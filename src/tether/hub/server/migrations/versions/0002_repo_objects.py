"""Which repo received which blob: an LFS oid is usable in a repo's commits only after bytes
with that sha256 were uploaded to that repo (knowing a hash is not enough).

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repo_objects",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "repo_pk", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.UniqueConstraint("repo_pk", "sha256"),
    )


def downgrade() -> None:
    op.drop_table("repo_objects")
