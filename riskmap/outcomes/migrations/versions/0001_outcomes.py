"""Users, API tokens, visits, audit and login failures.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(64), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_api_tokens_user_id", "api_tokens", ["user_id"])
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    op.create_index("ix_audit_at", "audit", ["at"])
    op.create_table(
        "visits",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("folio", sa.String(100), nullable=False, unique=True),
        sa.Column("cvegeo", sa.String(5), nullable=False),
        sa.Column("fecha", sa.Date, nullable=False),
        sa.Column("establecimientos", sa.Integer, nullable=False),
        sa.Column("nna_encontrados", sa.Integer, nullable=False),
        sa.Column("nna_peligroso", sa.Integer, nullable=False),
        sa.Column("sector", sa.String(2), nullable=True),
        sa.Column("notas", sa.Text, nullable=True),
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("import_id", sa.Integer, sa.ForeignKey("audit.id"), nullable=True),
        sa.CheckConstraint("establecimientos >= 1", name="ck_visits_establecimientos"),
        sa.CheckConstraint("nna_encontrados >= 0", name="ck_visits_encontrados"),
        sa.CheckConstraint("nna_peligroso >= 0 AND nna_peligroso <= nna_encontrados",
                           name="ck_visits_peligroso"),
    )
    op.create_index("ix_visits_cvegeo", "visits", ["cvegeo"])
    op.create_index("ix_visits_fecha", "visits", ["fecha"])
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_login_failures_key_at", "login_failures", ["key", "at"])


def downgrade():
    for table in ("login_failures", "visits", "audit", "api_tokens", "users"):
        op.drop_table(table)
