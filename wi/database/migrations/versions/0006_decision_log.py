"""decision log: a sequence number per decision, the inventory changes it makes, and the log's head

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 10:00:00

Decisions recorded before get sequence numbers in the order they were decided. They carry no inventory
changes: what they placed is not in the new inventory.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("changes", sa.Text(), server_default="[]", nullable=False))
    connection = op.get_bind()
    keys = connection.execute(sa.text("SELECT key FROM decisions ORDER BY decided_at, key")).scalars().all()
    for seq, key in enumerate(keys, start=1):
        connection.execute(
            sa.text("UPDATE decisions SET seq = :seq WHERE key = :key"), {"seq": seq, "key": key}
        )
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.create_index(batch_op.f("ix_decisions_seq"), ["seq"], unique=True)
    op.drop_table("decision_locks")
    op.create_table(
        "decision_log_head",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    connection.execute(
        sa.text("INSERT INTO decision_log_head (name, seq) VALUES ('decisions', :seq)"), {"seq": len(keys)}
    )


def downgrade() -> None:
    op.drop_table("decision_log_head")
    op.create_table(
        "decision_locks",
        sa.Column("service", sa.String(length=64), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("service"),
    )
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_decisions_seq"))
        batch_op.drop_column("changes")
        batch_op.drop_column("seq")
