"""Workplace table for targeting (inspectable workplaces K_m per municipality).

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "workplaces",
        sa.Column("cvegeo", sa.String(5), primary_key=True),
        sa.Column("count", sa.Integer, nullable=False),
        sa.CheckConstraint("count >= 1", name="ck_workplaces_count"),
    )


def downgrade():
    op.drop_table("workplaces")
