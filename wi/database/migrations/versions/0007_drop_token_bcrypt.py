"""drop the tokens' bcrypt: the NATS auth callout checks the SHA-256 like HTTP does

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("bcrypt")


def downgrade() -> None:
    # The hashes are gone: a downgraded store holds no bcrypt, so the old nats-server users would refuse
    # every token until each is made again.
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("bcrypt", sa.String(length=60), nullable=False, server_default=""))
