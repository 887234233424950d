"""Tables. Every schema change is a migration in `storage/migrations/` (tortoise makemigrations).

No semicolons in docstrings: tortoise puts them in SQL comments and its SQLite migration
runner splits statements on ";"."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tortoise import fields
from tortoise.indexes import Index
from tortoise.models import Model

if TYPE_CHECKING:  # for the type hints only: tortoise links the tables by their "models.X" names
    from fedineighbour.storage.offer_models import Offer, OfferAnswer, SavedSearch

MAX_ID = 2**63 - 1  # ids are BIGINT: a larger number from a client (a cursor) can match no row, and fails in SQL


def parse_row_id(text: str | None) -> int | None:
    """A row id given by a client (max_id, a page number): ASCII digits within BIGINT, else None. ("²" is a
    digit that int() refuses; 2**70 fails in SQL.)"""
    if text is None or not (text.isascii() and text.isdigit()) or len(text) > 19:
        return None
    value = int(text)
    return value if value <= MAX_ID else None


class Account(Model):
    """An actor, local or remote: residents, the town Group, the instance Application."""

    id = fields.BigIntField(primary_key=True)
    ap_id = fields.CharField(max_length=512, unique=True)
    username = fields.CharField(max_length=255, db_index=True)
    domain = fields.CharField(max_length=255, null=True, db_index=True)  # None for local
    local = fields.BooleanField(default=False)
    actor_type = fields.CharField(max_length=32, default="Person")
    role = fields.CharField(max_length=32, default="resident")
    display_name = fields.CharField(max_length=255, default="")
    summary = fields.TextField(default="")
    inbox = fields.CharField(max_length=512, default="")
    shared_inbox = fields.CharField(max_length=512, null=True)
    outbox = fields.CharField(max_length=512, null=True)
    followers_url = fields.CharField(max_length=512, null=True)
    following_url = fields.CharField(max_length=512, null=True)
    url = fields.CharField(max_length=512, null=True)
    icon_url = fields.CharField(max_length=512, null=True)
    key_id = fields.CharField(max_length=512, null=True, db_index=True)
    public_key_pem = fields.TextField(null=True)
    private_key_pem = fields.TextField(null=True)
    password_hash = fields.CharField(max_length=255, null=True)
    locked = fields.BooleanField(default=False)
    hide_collections = fields.BooleanField(default=False)  # followers/following collections show totals only
    discoverable = fields.BooleanField(default=True)
    suspended = fields.BooleanField(default=False)
    moved_to = fields.CharField(max_length=512, null=True)
    deleted_at = fields.DatetimeField(null=True)
    fetched_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "accounts"
        unique_together = (("username", "domain"),)

    @property
    def handle(self) -> str:
        return f"{self.username}@{self.domain}" if self.domain else self.username


class ApiToken(Model):
    id = fields.BigIntField(primary_key=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField("models.Account", related_name="tokens",
                                                                       on_delete=fields.CASCADE)
    account_id: int
    name = fields.CharField(max_length=255, default="")  # a label chosen by whoever created it
    created_at = fields.DatetimeField(auto_now_add=True)
    last_used_at = fields.DatetimeField(null=True)  # written at most once a minute per token
    expires_at = fields.DatetimeField(null=True)  # None: until revoked

    class Meta:
        table = "api_tokens"


class Follow(Model):
    """follower follows target: ap_id is the Follow activity's id (Undo needs it)."""

    id = fields.BigIntField(primary_key=True)
    ap_id = fields.CharField(max_length=512, unique=True)
    follower: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="following_rel", on_delete=fields.CASCADE)
    follower_id: int
    target: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="followers_rel", on_delete=fields.CASCADE)
    target_id: int
    state = fields.CharField(max_length=16, default="pending")  # pending | accepted
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "follows"
        unique_together = (("follower", "target"),)


class Note(Model):
    """A post, local or remote (Note, Article, Page, Question…, and later offers)."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=32, null=True, unique=True)  # local identifier in URLs
    ap_id = fields.CharField(max_length=512, unique=True)
    author: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField("models.Account", related_name="notes",
                                                                      on_delete=fields.CASCADE)
    author_id: int
    object_type = fields.CharField(max_length=64, default="Note")
    local = fields.BooleanField(default=False)
    url = fields.CharField(max_length=512, null=True)
    name = fields.CharField(max_length=512, default="")
    summary = fields.TextField(default="")
    content = fields.TextField(default="")
    sensitive = fields.BooleanField(default=False)
    visibility = fields.CharField(max_length=16, default="public")  # public|unlisted|followers|direct
    in_reply_to = fields.CharField(max_length=512, null=True, db_index=True)
    to: fields.JSONField[list[str]] = fields.JSONField(default=list)
    cc: fields.JSONField[list[str]] = fields.JSONField(default=list)
    # [{"href": actor id, "name": "@user@host"}]
    mentions: fields.JSONField[list[dict[str, Any]]] = fields.JSONField(default=list)
    tags: fields.JSONField[list[dict[str, Any]]] = fields.JSONField(default=list)
    attachments: fields.JSONField[list[dict[str, Any]]] = fields.JSONField(default=list)
    published = fields.DatetimeField(db_index=True)
    updated = fields.DatetimeField(null=True)
    deleted_at = fields.DatetimeField(null=True)

    class Meta:
        table = "notes"


class Interaction(Model):
    """Like and Announce received or sent: Undo removes the row."""

    id = fields.BigIntField(primary_key=True)
    ap_id = fields.CharField(max_length=512, unique=True)
    kind = fields.CharField(max_length=16)  # like | announce
    actor: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="interactions", on_delete=fields.CASCADE)
    actor_id: int
    object_ap_id = fields.CharField(max_length=512, db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "interactions"


class Block(Model):
    id = fields.BigIntField(primary_key=True)
    ap_id = fields.CharField(max_length=512, unique=True)
    actor: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="blocks_made", on_delete=fields.CASCADE)
    actor_id: int
    target: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="blocks_received", on_delete=fields.CASCADE)
    target_id: int
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "blocks"


class Report(Model):
    """A Flag received from another server, or sent by our moderators."""

    id = fields.BigIntField(primary_key=True)
    ap_id = fields.CharField(max_length=512, unique=True)
    reporter: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="reports_made", on_delete=fields.CASCADE)
    reporter_id: int
    objects: fields.JSONField[list[str]] = fields.JSONField(default=list)
    comment = fields.TextField(default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "reports"


class Notification(Model):
    """Something a local account should see, social or of the exchange: one table, one feed.

    `kind` says which references are set (neighbourhood/notifications.py lists the kinds): social ones
    (follow, mention, like...) carry `note`, the exchange's (answer, reserved, saved_search...) `offer`
    and maybe `answer` or `saved_search`; `from_account` is the account that acted, if any.
    """

    id = fields.BigIntField(primary_key=True)
    account: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="notifications", on_delete=fields.CASCADE)
    account_id: int
    kind = fields.CharField(max_length=32)
    from_account: fields.ForeignKeyNullableRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="+", on_delete=fields.CASCADE, null=True)
    from_account_id: int | None
    note: fields.ForeignKeyNullableRelation[Note] = fields.ForeignKeyField(
        "models.Note", related_name="+", on_delete=fields.CASCADE, null=True)
    note_id: int | None
    offer: fields.ForeignKeyNullableRelation[Offer] = fields.ForeignKeyField(
        "models.Offer", related_name=False, on_delete=fields.CASCADE, null=True)
    offer_id: int | None
    answer: fields.ForeignKeyNullableRelation[OfferAnswer] = fields.ForeignKeyField(
        "models.OfferAnswer", related_name=False, on_delete=fields.CASCADE, null=True)
    answer_id: int | None
    saved_search: fields.ForeignKeyNullableRelation[SavedSearch] = fields.ForeignKeyField(
        "models.SavedSearch", related_name=False, on_delete=fields.CASCADE, null=True)
    saved_search_id: int | None
    read = fields.BooleanField(default=False)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "notifications"
        # The feed: one account's rows newest first, in the order (created_at, id).
        indexes = (Index(fields=("account_id", "created_at", "id"), name="notifications_feed"),)


class OutboundActivity(Model):
    """An activity we emitted: its id dereferences at /activities/{id}."""

    id = fields.BigIntField(primary_key=True)
    key = fields.CharField(max_length=32, unique=True)
    ap_id = fields.CharField(max_length=512, unique=True)
    actor: fields.ForeignKeyRelation[Account] = fields.ForeignKeyField(
        "models.Account", related_name="activities", on_delete=fields.CASCADE)
    actor_id: int
    type = fields.CharField(max_length=32)
    visibility = fields.CharField(max_length=16, default="public")
    payload: fields.JSONField[dict[str, Any]] = fields.JSONField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "outbound_activities"


class InboxItem(Model):
    """A verified activity waiting for (or done with) its handler. received -> processed | failed."""

    id = fields.BigIntField(primary_key=True)
    activity_id = fields.CharField(max_length=512, unique=True)
    actor_id = fields.CharField(max_length=512)
    type = fields.CharField(max_length=64)
    payload = fields.TextField()  # the JSON as received
    state = fields.CharField(max_length=16, default="received")
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    locked_until = fields.DatetimeField(null=True)
    last_error = fields.TextField(null=True)
    received_at = fields.DatetimeField()

    class Meta:
        table = "inbox_items"
        # Workers claim the oldest due rows of a state (storage/queue.claim_rows): this index hands them over in
        # order and stops after a batch, where an index on state alone made every claim read and sort the whole
        # backlog.
        indexes = (Index(fields=("state", "next_attempt_at"), name="inbox_items_due"),)


class Delivery(Model):
    """One activity to one inbox. pending -> sent | failed | skipped."""

    id = fields.BigIntField(primary_key=True)
    activity: fields.ForeignKeyRelation[OutboundActivity] = fields.ForeignKeyField(
        "models.OutboundActivity", related_name="deliveries", on_delete=fields.CASCADE)
    activity_id: int
    inbox = fields.CharField(max_length=512)
    host = fields.CharField(max_length=255, db_index=True)
    state = fields.CharField(max_length=16, default="pending")
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField()
    locked_until = fields.DatetimeField(null=True)
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "deliveries"
        indexes = (Index(fields=("state", "next_attempt_at"), name="deliveries_due"),)  # as inbox_items_due
        unique_together = (("activity", "inbox"),)


class HostHealth(Model):
    """Delivery health per remote host: 7 distinct failing days -> unavailable until heard from."""

    host = fields.CharField(max_length=255, primary_key=True)
    # ISO dates with a failure since the last success
    failure_days: fields.JSONField[list[str]] = fields.JSONField(default=list)
    unavailable = fields.BooleanField(default=False)
    last_success_at = fields.DatetimeField(null=True)

    class Meta:
        table = "host_health"


class DomainBlock(Model):
    id = fields.BigIntField(primary_key=True)
    domain = fields.CharField(max_length=255, unique=True)
    severity = fields.CharField(max_length=16, default="suspend")  # suspend | silence | noop
    reject_media = fields.BooleanField(default=False)
    reject_reports = fields.BooleanField(default=False)
    public_comment = fields.TextField(default="")
    private_comment = fields.TextField(default="")
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "domain_blocks"
