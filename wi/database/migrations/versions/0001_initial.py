"""initial registry schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 04:08:13.923032
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "current_hints",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("workload", sa.String(length=63), nullable=False),
        sa.Column("scope", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("hint_id", sa.String(length=128), nullable=False),
        sa.Column("is_clear", sa.Boolean(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stream_seq", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "workload", "scope", "kind"),
    )
    op.create_table(
        "hint_history",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("hint_id", sa.String(length=128), nullable=False),
        sa.Column("workload", sa.String(length=63), nullable=False),
        sa.Column("scope", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("is_clear", sa.Boolean(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stream_seq", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "hint_id"),
    )
    with op.batch_alter_table("hint_history", schema=None) as batch_op:
        batch_op.create_index("ix_hint_history_workload", ["tenant", "workload", "kind"], unique=False)

    op.create_table(
        "notices",
        sa.Column("notice_id", sa.String(length=128), nullable=False),
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("workload", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("deferred_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stream_seq", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("notice_id"),
    )
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.create_index("ix_notices_workload", ["tenant", "workload", "state"], unique=False)

    op.create_table(
        "responses",
        sa.Column("tenant", sa.String(length=63), nullable=False),
        sa.Column("response_id", sa.String(length=128), nullable=False),
        sa.Column("notice_id", sa.String(length=128), nullable=False),
        sa.Column("workload", sa.String(length=63), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stream_seq", sa.BigInteger(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("tenant", "response_id"),
    )
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.create_index("ix_responses_notice", ["notice_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("responses", schema=None) as batch_op:
        batch_op.drop_index("ix_responses_notice")

    op.drop_table("responses")
    with op.batch_alter_table("notices", schema=None) as batch_op:
        batch_op.drop_index("ix_notices_workload")

    op.drop_table("notices")
    with op.batch_alter_table("hint_history", schema=None) as batch_op:
        batch_op.drop_index("ix_hint_history_workload")

    op.drop_table("hint_history")
    op.drop_table("current_hints")
