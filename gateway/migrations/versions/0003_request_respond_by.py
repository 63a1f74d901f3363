"""requests.respond_by: the assigned centre's answer deadline (failover protocol, docs/failover.md)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 20:05:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('requests') as batch:
        batch.add_column(sa.Column('respond_by', sa.DateTime(timezone=True), nullable=True))
        batch.create_index('ix_requests_respond_by', ['respond_by'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('requests') as batch:
        batch.drop_index('ix_requests_respond_by')
        batch.drop_column('respond_by')
