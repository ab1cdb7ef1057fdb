"""Personal fields encrypted at rest, erasure, and a complete audit log

Every personal field of a referral (child, guardian, consent, reason, status reason, outcome,
referrer) and of its events (reason, outcome), and every webhook secret, becomes text holding
`"<key id>:<base64 nonce+ciphertext>"` (models/crypto.py); the existing rows are encrypted
here with the configured DATA_ENCRYPTION_KEY. The personal fields become nullable (an erased
referral has none) and `referral.erased_at` is added. The booleans, the contact preference,
the consent method and time identify no one and stay plain (nullable, erased too).

The audit log gets the channel and request id of each row; a row may have no client (the
operator's command line) and no referral (`denied`: the id asked for is in `requested_id`).
An erasure's event has no client either.

Revision ID: 0010_privacy
Revises: 0008_webhooks
"""

import sqlalchemy as sa
from alembic import op

from models import crypto

revision = "0010_privacy"
down_revision = "0008_webhooks"
branch_labels = None
depends_on = None

# (column, its type before, nullable before)
REFERRAL_ENCRYPTED = [
    ("reason", sa.Text(), False),
    ("status_reason", sa.Text(), True),
    ("outcome", sa.Text(), True),
    ("child_given_name", sa.String(length=100), False),
    ("child_family_name", sa.String(length=100), False),
    ("child_birth_date", sa.Date(), False),
    ("child_town", sa.String(length=100), True),
    ("child_postcode", sa.String(length=10), True),
    ("guardian_name", sa.String(length=200), False),
    ("guardian_relationship", sa.String(length=50), False),
    ("guardian_phone", sa.String(length=32), True),
    ("guardian_email", sa.String(length=254), True),
    ("guardian_preferred_language", sa.String(length=8), True),
    ("consent_obtained_by", sa.String(length=200), False),
    ("consent_relationship", sa.String(length=50), False),
    ("referrer_name", sa.String(length=200), False),
    ("referrer_organization", sa.String(length=200), False),
    ("referrer_phone", sa.String(length=32), True),
    ("referrer_email", sa.String(length=254), True),
]
REFERRAL_PLAIN = [
    ("guardian_contact_preference", sa.String(length=8)),
    ("guardian_may_leave_message", sa.Boolean()),
    ("consent_obtained", sa.Boolean()),
    ("consent_obtained_at", sa.DateTime(timezone=True)),
    ("consent_method", sa.String(length=16)),
]
ENCRYPTED = {
    "referral": [name for name, _, _ in REFERRAL_ENCRYPTED],
    "referral_event": ["reason", "outcome"],
    "webhook_subscription": ["secret"],
}


def _convert(table_name: str, columns: list[str], change) -> None:
    """Rewrite every non-NULL value of `columns` with `change(value, 'table.column')`."""
    bind = op.get_bind()
    table = sa.table(table_name, sa.column("id", sa.Uuid()), *(sa.column(c, sa.Text()) for c in columns))
    for row in bind.execute(sa.select(table)).mappings().all():
        values = {c: change(row[c], f"{table_name}.{c}") for c in columns if row[c] is not None}
        if values:
            bind.execute(table.update().where(table.c.id == row["id"]).values(**values))


def upgrade():
    if crypto.current_key_id() is None:
        raise RuntimeError("DATA_ENCRYPTION_KEY is not configured: the existing referrals cannot be encrypted.")
    with op.batch_alter_table("referral") as batch_op:
        for name, before, _ in REFERRAL_ENCRYPTED:
            extra = {"postgresql_using": f"{name}::text"} if isinstance(before, sa.Date) else {}
            batch_op.alter_column(name, existing_type=before, type_=sa.Text(), nullable=True, **extra)
        for name, kind in REFERRAL_PLAIN:
            batch_op.alter_column(name, existing_type=kind, nullable=True)
        batch_op.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("webhook_subscription") as batch_op:
        batch_op.alter_column("secret", existing_type=sa.String(length=128), type_=sa.Text(), existing_nullable=False)
    with op.batch_alter_table("referral_event") as batch_op:
        batch_op.alter_column("actor_client_id", existing_type=sa.Uuid(), nullable=True)
    with op.batch_alter_table("audit_log") as batch_op:
        batch_op.alter_column("client_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.alter_column("referral_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.add_column(sa.Column("requested_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("channel", sa.String(length=8), nullable=True))
        batch_op.add_column(sa.Column("request_id", sa.String(length=64), nullable=True))
    for table_name, columns in ENCRYPTED.items():
        _convert(table_name, columns, crypto.encrypt)


def downgrade():
    bind = op.get_bind()
    if bind.execute(sa.text("SELECT count(*) FROM referral WHERE erased_at IS NOT NULL")).scalar():
        raise RuntimeError("Erased referrals have no personal data: the schema before 0010_privacy cannot hold them.")
    for table_name, columns in ENCRYPTED.items():
        _convert(table_name, columns, crypto.decrypt)
    bind.execute(sa.text("DELETE FROM audit_log WHERE client_id IS NULL OR referral_id IS NULL"))
    with op.batch_alter_table("audit_log") as batch_op:
        batch_op.drop_column("request_id")
        batch_op.drop_column("channel")
        batch_op.drop_column("requested_id")
        batch_op.alter_column("referral_id", existing_type=sa.Uuid(), nullable=False)
        batch_op.alter_column("client_id", existing_type=sa.Uuid(), nullable=False)
    with op.batch_alter_table("referral_event") as batch_op:
        batch_op.alter_column("actor_client_id", existing_type=sa.Uuid(), nullable=False)
    with op.batch_alter_table("webhook_subscription") as batch_op:
        batch_op.alter_column("secret", existing_type=sa.Text(), type_=sa.String(length=128), existing_nullable=False)
    with op.batch_alter_table("referral") as batch_op:
        batch_op.drop_column("erased_at")
        for name, kind in REFERRAL_PLAIN:
            batch_op.alter_column(name, existing_type=kind, nullable=False)
        for name, before, nullable in REFERRAL_ENCRYPTED:
            extra = {"postgresql_using": f"{name}::date"} if isinstance(before, sa.Date) else {}
            batch_op.alter_column(name, existing_type=sa.Text(), type_=before, nullable=nullable, **extra)
