"""Initial schema: repos, commits, refs, tokens.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repos",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("repo_type", sa.String(16), nullable=False),
        sa.Column("namespace", sa.String(96), nullable=False),
        sa.Column("name", sa.String(96), nullable=False),
        sa.Column("private", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("repo_type", "namespace", "name"),
    )
    op.create_table(
        "commits",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "repo_pk", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("oid", sa.String(40), nullable=False),
        sa.Column("parent_oid", sa.String(40), nullable=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("author", sa.String(96), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tree_json", sa.Text, nullable=False),
    )
    op.create_index("ix_commits_repo_pk", "commits", ["repo_pk"])
    op.create_index("ix_commits_oid", "commits", ["oid"])
    op.create_table(
        "refs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "repo_pk", sa.Integer, sa.ForeignKey("repos.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("commit_oid", sa.String(40), nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.UniqueConstraint("repo_pk", "kind", "name"),
    )
    op.create_index("ix_refs_repo_pk", "refs", ["repo_pk"])
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user", sa.String(96), nullable=False),
        sa.Column("name", sa.String(96), nullable=False),
        sa.Column("scope", sa.String(8), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    for table in ("tokens", "refs", "commits", "repos"):
        op.drop_table(table)
