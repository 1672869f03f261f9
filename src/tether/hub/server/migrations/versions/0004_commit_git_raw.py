"""The raw git commit object of a commit that arrived by `git push`, kept byte for byte:
its id covers the author, committer, time zones, message (and any signature) exactly as
the client wrote them, which the other columns do not hold. NULL for commits the hub made
(their git object is rebuilt from the row, gitobjects.git_commit).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("commits") as batch:
        batch.add_column(sa.Column("git_raw", sa.LargeBinary, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("commits") as batch:
        batch.drop_column("git_raw")
