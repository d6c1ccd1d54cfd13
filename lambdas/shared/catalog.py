"""Access to the asset catalog (one DynamoDB table, single-table design).

Item shapes (``pk`` / ``sk`` are the table key; GSIs are sparse):

==============  ===============================  ====================  ==========================
item            pk                               sk                    purpose
==============  ===============================  ====================  ==========================
asset           ``ASSET#<asset_id>``             ``ASSET``             one clip and its state
source marker   ``SOURCE#<source>#<source_id>``  ``SOURCE``            "has this item been seen"
status counter  ``CAMPAIGN#<campaign>``          ``STATUS#<status>``   counts per campaign/status
label index     ``LABEL#<label>``                ``ASSET#<asset_id>``  search by label
word index      ``WORD#<word>``                  ``ASSET#<asset_id>``  search by a spoken word
task token      ``TOKEN#<job_tag>``              ``TOKEN``             Rekognition callback *
result version  ``ASSET#<asset_id>``             ``RESULT#<at>#<run>`` every run's labels.json
restore waiter  ``RESTORE#<bucket>/<key>``       ``RUN#<run>``         S3 restore callback
==============  ===============================  ====================  ==========================

Asset items also carry ``gsi1pk=CAMPAIGN#<campaign>`` / ``gsi1sk=<created_at>#<asset_id>``
(index ``ByCampaign``: "assets of a campaign, newest first") and
``gsi2pk=CAMPAIGN#<campaign>#STATUS#<status>`` / ``gsi2sk=<updated_at>#<asset_id>``
(index ``ByCampaignStatus``: "failed assets of a campaign with their reason").
(*) Token items also carry ``gsi1pk=TOKENS#PENDING`` so the heartbeat sweep lists waiting tasks
with one query of ``ByCampaign``.
The word index holds a bounded set of each asset's transcript words (``index_words``), each
with how often and from when it is said; the asset records which (``speech_words``), so a
reprocess or a failure removes exactly those.
Counters are changed in the same transaction as the asset's status, so they never drift.
``expires_at`` (epoch seconds) is the table's TTL attribute: claims of crashed ingests and stale
task tokens disappear on their own.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.exceptions import ClientError

STATUSES = ("INGESTED", "PROCESSING", "PROCESSED", "FAILED")
BY_CAMPAIGN_INDEX = "ByCampaign"
BY_CAMPAIGN_STATUS_INDEX = "ByCampaignStatus"
CLAIM_TTL_S = 3600
TOKEN_TTL_S = 2 * 24 * 3600
PENDING_TOKENS = "TOKENS#PENDING"
MAX_REASON_LEN = 1000
# What finalize publishes on an asset's record. All of it points at (or sums up) objects in the
# processed zone, which mark-failed removes, so a FAILED record drops it. (The source facts
# finalize also records, ``source_codec``, ``height``, ``hdr``, ``has_audio``, describe the raw
# file, which stays, so they stay too.)
PUBLISHED_ATTRIBUTES = (
    "labels_key", "top_labels", "mp4_key", "hls_key", "thumbnail_key", "moderation_flagged",
    "speech_words",
)  # fmt: skip
# A word of a transcript: letters and digits in any script, with inner apostrophes ("don't").
_WORD = re.compile(r"\w+(?:['’]\w+)*")
MIN_WORD_CHARS = 2


TTL_ATTRIBUTE = "expires_at"
RESULT_PREFIX = "RESULT#"
# A waiter outlives the longest restore wait configuration allows (reprocess.
# restore_timeout_hours, at most 7 days), with a day of margin.
RESTORE_WAITER_TTL_S = 8 * 24 * 3600
# The asset attribute naming the reprocess run in flight (one at a time per asset).
REPROCESS_RUN = "reprocess_run"


class ReprocessRunning(RuntimeError):
    """Another reprocess of the asset is in flight (its run's name is the message's subject)."""

    def __init__(self, asset_id: str, run: str) -> None:
        super().__init__(f"asset {asset_id} is already being reprocessed by run {run}")
        self.run = run


def table_definition(name: str) -> dict[str, Any]:
    """``CreateTable`` arguments for the stack's schema (keys and the two sparse GSIs).

    For local worlds, tests and benchmarks only; the deployed table comes from
    ``constructs_lib/catalog.py`` and a test checks the two definitions agree. TTL is a separate
    call (``create_table``) because not every local DynamoDB emulator implements it.
    """
    return dict(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": attr, "AttributeType": "S"}
            for attr in ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk")
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": f"{prefix}pk", "KeyType": "HASH"},
                    {"AttributeName": f"{prefix}sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index, prefix in ((BY_CAMPAIGN_INDEX, "gsi1"), (BY_CAMPAIGN_STATUS_INDEX, "gsi2"))
        ],
    )


def create_table(dynamodb: Any, name: str) -> None:
    """Create the catalog table with the stack's schema (keys, two sparse GSIs, TTL)."""
    dynamodb.create_table(**table_definition(name))
    dynamodb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )


class CatalogError(Exception):
    """The catalog could not record a change (for example an unknown asset or status)."""


class AlreadyClaimed(CatalogError):
    """Another run already has (or had) this source item with the same checksum."""


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def asset_pk(asset_id: str) -> dict[str, str]:
    return {"pk": f"ASSET#{asset_id}", "sk": "ASSET"}


def source_pk(source: str, source_id: str) -> dict[str, str]:
    return {"pk": f"SOURCE#{source}#{source_id}", "sk": "SOURCE"}


def counter_pk(campaign: str, status: str) -> dict[str, str]:
    return {"pk": campaign_key(campaign), "sk": f"STATUS#{status}"}


def restore_pk(bucket: str, key: str) -> str:
    return f"RESTORE#{bucket}/{key}"


def token_pk(job_tag: str) -> dict[str, str]:
    return {"pk": f"TOKEN#{job_tag}", "sk": "TOKEN"}


def campaign_key(campaign: str, status: str | None = None) -> str:
    """A campaign's partition: its counters, and its assets in ``ByCampaign``; with a status,
    its assets in that status (``ByCampaignStatus``)."""
    return f"CAMPAIGN#{campaign}" if status is None else f"CAMPAIGN#{campaign}#STATUS#{status}"


def index_keys(
    campaign: str, status: str, *, created_at: str, updated_at: str, asset_id: str
) -> dict[str, str]:
    """An asset's entries in both indexes; the sort keys order by time, then break ties."""
    return {
        "gsi1pk": campaign_key(campaign),
        "gsi1sk": f"{created_at}#{asset_id}",
        "gsi2pk": campaign_key(campaign, status),
        "gsi2sk": f"{updated_at}#{asset_id}",
    }


def label_key(label: str) -> str:
    """Labels are searched case-insensitively, so the partition is the lower-case name."""
    return f"LABEL#{label.lower()}"


def words_of(text: str) -> list[str]:
    """The searchable words of a text, in order: compatibility-normalised (NFKC) and
    case-folded, so a query matches a transcript however either was typed; single characters
    ("a", "I") are too common to search by and are left out."""
    folded = unicodedata.normalize("NFKC", text).casefold().replace("’", "'")
    return [word for word in _WORD.findall(folded) if len(word) >= MIN_WORD_CHARS]


def word_key(word: str) -> str:
    return f"WORD#{word}"


def word_item(
    word: str, count: int, first_s: float, *, asset_id: str, campaign: str
) -> dict[str, Any]:
    return {
        "pk": word_key(word),
        "sk": f"ASSET#{asset_id}",
        "word": word,
        "asset_id": asset_id,
        "campaign": campaign,
        "count": count,
        "first_s": str(round(first_s, 3)),
    }


def label_item(label: str, confidence: float, *, asset_id: str, campaign: str) -> dict[str, str]:
    return {
        "pk": label_key(label),
        "sk": f"ASSET#{asset_id}",
        "label": label,
        "asset_id": asset_id,
        "campaign": campaign,
        "confidence": str(round(confidence, 2)),
    }


def _check_status(status: str) -> str:
    if status not in STATUSES:
        raise CatalogError(f"unknown asset status {status!r}; expected one of {STATUSES}")
    return status


class Catalog:
    """Typed operations on the catalog table; handlers never build keys themselves."""

    def __init__(self, table_name: str, *, resource: Any | None = None) -> None:
        # Public so a store of other items in the same table (jobs) shares it: building a
        # DynamoDB resource costs tens of milliseconds of model loading per invocation.
        self.resource = resource or boto3.resource("dynamodb")
        self.table = self.resource.Table(table_name)
        self.table_name = table_name
        self._client = self.table.meta.client

    # -- source markers: "has this source item been seen" -------------------------------------
    def seen(self, source: str, source_id: str, checksum: str) -> bool:
        """True when this exact content of the item is already committed or being ingested."""
        item = self.table.get_item(Key=source_pk(source, source_id), ConsistentRead=True).get(
            "Item"
        )
        if not item or item.get("checksum") != checksum:
            return False
        expires = item.get("expires_at")
        return expires is None or int(expires) > int(time.time())

    def claim(self, source: str, source_id: str, checksum: str, asset_id: str) -> None:
        """Reserve a source item for this run; concurrent runs lose the conditional write.

        A claim expires (TTL) unless committed, so a crashed run never blocks the item forever.
        """
        now = int(time.time())
        try:
            self.table.put_item(
                Item={
                    **source_pk(source, source_id),
                    "asset_id": asset_id,
                    "checksum": checksum,
                    "claimed_at": now_iso(),
                    "expires_at": now + CLAIM_TTL_S,
                },
                ConditionExpression=(
                    "attribute_not_exists(pk) OR checksum <> :c "
                    "OR (attribute_exists(expires_at) AND expires_at < :now)"
                ),
                ExpressionAttributeValues={":c": checksum, ":now": now},
            )
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise AlreadyClaimed(
                    f"{source} item {source_id} is already in the catalog"
                ) from err
            raise

    def release(self, source: str, source_id: str, asset_id: str) -> None:
        """Drop an uncommitted claim after a failed ingest, leaving no trace of the attempt."""
        try:
            self.table.delete_item(
                Key=source_pk(source, source_id),
                ConditionExpression="asset_id = :a AND attribute_exists(expires_at)",
                ExpressionAttributeValues={":a": asset_id},
            )
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def commit_asset(self, asset: Mapping[str, Any]) -> None:
        """Record a newly ingested asset, make its claim permanent and count it, atomically."""
        required = ("asset_id", "source", "source_id", "campaign", "checksum")
        missing = [name for name in required if not asset.get(name)]
        if missing:
            raise CatalogError(f"asset is missing {', '.join(missing)}")
        at = now_iso()
        asset_id, campaign = asset["asset_id"], asset["campaign"]
        item = {
            **asset,
            **asset_pk(asset_id),
            "status": "INGESTED",
            "created_at": at,
            "updated_at": at,
            **index_keys(campaign, "INGESTED", created_at=at, updated_at=at, asset_id=asset_id),
        }
        self._client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": self.table_name,
                        "Item": item,
                        "ConditionExpression": "attribute_not_exists(pk)",
                    }
                },
                {
                    "Update": {
                        "TableName": self.table_name,
                        "Key": source_pk(asset["source"], asset["source_id"]),
                        "UpdateExpression": "REMOVE expires_at SET committed_at = :at",
                        "ConditionExpression": "asset_id = :a",
                        "ExpressionAttributeValues": {":a": asset_id, ":at": at},
                    }
                },
                self._count(campaign, "INGESTED", +1),
            ]
        )

    # -- status transitions --
    def get_asset(self, asset_id: str) -> dict[str, Any] | None:
        item = self.table.get_item(Key=asset_pk(asset_id), ConsistentRead=True).get("Item")
        return dict(item) if item else None

    def set_status(
        self,
        asset_id: str,
        status: str,
        *,
        attributes: Mapping[str, Any] | None = None,
        remove: Sequence[str] = (),
    ) -> dict[str, Any]:
        """Move an asset to ``status`` and adjust both counters in one transaction.

        Extra ``attributes`` (labels key, failure reason...) are written, and the ``remove``d
        ones dropped, with the same change. Setting the status an asset already has only
        updates the attributes.
        """
        _check_status(status)
        current = self.get_asset(asset_id)
        if current is None:
            raise CatalogError(f"asset {asset_id} is not in the catalog")
        old, campaign = current["status"], current["campaign"]
        at = now_iso()
        values: dict[str, Any] = {
            ":s": status,
            ":old": old,
            ":at": at,
            ":g": campaign_key(campaign, status),
            ":gs": f"{at}#{asset_id}",
        }
        names = {"#status": "status"}
        sets = ["#status = :s", "updated_at = :at", "gsi2pk = :g", "gsi2sk = :gs"]
        for i, (name, value) in enumerate(sorted((attributes or {}).items())):
            names[f"#a{i}"] = name
            values[f":a{i}"] = value
            sets.append(f"#a{i} = :a{i}")
        dropped = [name for name in dict.fromkeys(remove) if name not in (attributes or {})]
        for i, name in enumerate(dropped):
            names[f"#r{i}"] = name
        expression = "SET " + ", ".join(sets)
        if dropped:
            expression += " REMOVE " + ", ".join(f"#r{i}" for i in range(len(dropped)))
        items: list[dict[str, Any]] = [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": asset_pk(asset_id),
                    "UpdateExpression": expression,
                    "ConditionExpression": "#status = :old",
                    "ExpressionAttributeNames": names,
                    "ExpressionAttributeValues": values,
                }
            }
        ]
        if old != status:
            items += [self._count(campaign, old, -1), self._count(campaign, status, +1)]
        self._client.transact_write_items(TransactItems=items)
        updated = {**current, **(attributes or {}), "status": status, "updated_at": at}
        return {k: v for k, v in updated.items() if k not in dropped}

    def mark_failed(self, asset_id: str, reason: str) -> dict[str, Any]:
        """Record why an asset failed; the reason is shortened to stay readable on the page.

        A failed asset publishes nothing: what finalize may already have published (the label
        index entries, the record's pointers to labels.json and the renditions, which
        mark-failed deletes) goes. Running it again changes nothing more.
        """
        text = reason.strip() or "unknown error"
        if len(text) > MAX_REASON_LEN:
            text = text[: MAX_REASON_LEN - 1] + "…"
        current = self.get_asset(asset_id)
        if current is None:
            raise CatalogError(f"asset {asset_id} is not in the catalog")
        labels = current.get("top_labels")
        if isinstance(labels, list | tuple) and labels:
            self.unindex_labels(asset_id, [str(label) for label in labels])
        words = current.get("speech_words")
        if isinstance(words, list | tuple) and words:
            self.unindex_words(asset_id, [str(word) for word in words])
        return self.set_status(
            asset_id, "FAILED", attributes={"failure_reason": text}, remove=PUBLISHED_ATTRIBUTES
        )

    def _count(self, campaign: str, status: str, delta: int) -> dict[str, Any]:
        return {
            "Update": {
                "TableName": self.table_name,
                "Key": counter_pk(campaign, status),
                "UpdateExpression": "ADD #n :d",
                "ExpressionAttributeNames": {"#n": "count"},
                "ExpressionAttributeValues": {":d": delta},
            }
        }

    # -- reads for the dashboard --
    def status_counts(self, campaign: str) -> dict[str, int]:
        """Counts per status for one campaign, from the counter items (one small query)."""
        resp = self.table.query(
            KeyConditionExpression="pk = :p AND begins_with(sk, :s)",
            ExpressionAttributeValues={":p": campaign_key(campaign), ":s": "STATUS#"},
        )
        counts = {status: 0 for status in STATUSES}
        for item in resp.get("Items", []):
            counts[item["sk"].removeprefix("STATUS#")] = int(item.get("count", 0))
        return counts

    def campaign_assets(
        self, campaign: str, *, limit: int = 50, status: str | None = None
    ) -> list[dict[str, Any]]:
        """Newest assets of a campaign, optionally only those in one status."""
        if status is None:
            index, key, value = BY_CAMPAIGN_INDEX, "gsi1pk", campaign_key(campaign)
        else:
            index, key = BY_CAMPAIGN_STATUS_INDEX, "gsi2pk"
            value = campaign_key(campaign, _check_status(status))
        resp = self.table.query(
            IndexName=index,
            KeyConditionExpression=f"{key} = :v",
            ExpressionAttributeValues={":v": value},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [dict(item) for item in resp.get("Items", [])]

    # -- label index --
    def _put_entries(self, items: Iterable[Mapping[str, Any]]) -> None:
        with self.table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
            for item in items:
                batch.put_item(Item=dict(item))

    def _delete_entries(self, asset_id: str, partitions: Iterable[str]) -> None:
        """Drop an asset's entries (``ASSET#<id>``) from the given index partitions."""
        with self.table.batch_writer(overwrite_by_pkeys=["pk", "sk"]) as batch:
            for key in dict.fromkeys(partitions):
                batch.delete_item(Key={"pk": key, "sk": f"ASSET#{asset_id}"})

    def index_labels(self, asset: Mapping[str, Any], labels: Mapping[str, float]) -> None:
        """Write one small item per top label so "clips showing X" is a query, not a scan."""
        self._put_entries(
            label_item(label, confidence, asset_id=asset["asset_id"], campaign=asset["campaign"])
            for label, confidence in labels.items()
        )

    def unindex_labels(self, asset_id: str, labels: Iterable[str]) -> None:
        """Drop an asset's label index entries (finalize indexed its top labels by name)."""
        self._delete_entries(asset_id, (label_key(label) for label in labels))

    def assets_with_label(self, label: str, *, limit: int = 50) -> Iterator[dict[str, Any]]:
        resp = self.table.query(
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": label_key(label)},
            Limit=limit,
        )
        for item in resp.get("Items", []):
            yield dict(item)

    # -- word index --
    def index_words(self, asset: Mapping[str, Any], words: Mapping[str, tuple[int, float]]) -> None:
        """One small item per indexed word (``words``: word -> (times said, first said at s)),
        so "clips where someone says X" is a query, like the label index."""
        self._put_entries(
            word_item(word, count, first_s, asset_id=asset["asset_id"], campaign=asset["campaign"])
            for word, (count, first_s) in words.items()
        )

    def unindex_words(self, asset_id: str, words: Iterable[str]) -> None:
        self._delete_entries(asset_id, (word_key(word) for word in words))

    def assets_saying(self, word: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """Index entries of the assets whose transcript has ``word`` (one word, as typed)."""
        found = words_of(word)
        if len(found) != 1:
            raise CatalogError(f"{word!r} is not one searchable word (letters or digits, 2+)")
        resp = self.table.query(
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": word_key(found[0])},
            Limit=limit,
        )
        return [dict(item) for item in resp.get("Items", [])]

    # -- task tokens for the Rekognition callback --
    def put_token(self, job_tag: str, token: str, *, asset_id: str, feature: str) -> None:
        """Store a waiting task's token before the job starts, so no completion can outrun it."""
        stored_at = now_iso()
        self.table.put_item(
            Item={
                **token_pk(job_tag),
                "task_token": token,
                "asset_id": asset_id,
                "feature": feature,
                "stored_at": stored_at,
                "expires_at": int(time.time()) + TOKEN_TTL_S,
                # Sparse entry in the ByCampaign index so the heartbeat sweep finds every
                # waiting task with one query.
                "gsi1pk": PENDING_TOKENS,
                "gsi1sk": f"{stored_at}#{job_tag}",
            }
        )

    def set_token_job(self, job_tag: str, job_id: str) -> None:
        """Record the job a stored token waits on; nothing when the token is already gone (its
        job ended and resumed the task first), so no stub token without a TTL is left."""
        try:
            self.table.update_item(
                Key=token_pk(job_tag),
                UpdateExpression="SET job_id = :j",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":j": job_id},
            )
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def take_token(self, job_tag: str) -> dict[str, Any] | None:
        """Remove a stored token and return it, atomically: of two handlers racing for one job
        (its event and the heartbeat sweep), exactly one gets it."""
        try:
            answer = self.table.delete_item(
                Key=token_pk(job_tag),
                ConditionExpression="attribute_exists(pk)",
                ReturnValues="ALL_OLD",
            )
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            return None
        return dict(answer.get("Attributes") or {}) or None

    def restore_token(self, item: dict[str, Any]) -> None:
        """Put back a token taken by ``take_token`` whose task could not be answered (a fault
        to retry), so the retry or the sweep finds it."""
        self.table.put_item(Item=item)

    def pending_tokens(self, *, limit: int = 500) -> list[dict[str, Any]]:
        """Every stored task token (tasks still waiting on a Rekognition job), oldest first."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "IndexName": BY_CAMPAIGN_INDEX,
            "KeyConditionExpression": "gsi1pk = :p",
            "ExpressionAttributeValues": {":p": PENDING_TOKENS},
        }
        while len(items) < limit:
            resp = self.table.query(**kwargs)
            items += [dict(item) for item in resp.get("Items", [])]
            if "LastEvaluatedKey" not in resp:
                break
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return items[:limit]

    def get_token(self, job_tag: str) -> dict[str, Any] | None:
        item = self.table.get_item(Key=token_pk(job_tag), ConsistentRead=True).get("Item")
        return dict(item) if item else None

    def delete_token(self, job_tag: str) -> None:
        self.table.delete_item(Key=token_pk(job_tag))

    # -- result versions: every run's labels.json, newest last --
    def add_result_version(self, asset_id: str, version: Mapping[str, Any]) -> dict[str, Any]:
        """Record one run's result (``generated_at`` and ``run`` required; the rest as given).

        A retried finalize records its run once more; the history shows both writes, each
        naming the labels.json version it wrote.
        """
        run = str(version.get("run") or "")
        if not version.get("generated_at") or not run:
            raise CatalogError("a result version needs generated_at and run")
        # Ordered by when it was recorded, to the microsecond: two runs can finish within the
        # second ``generated_at`` is given to.
        recorded_at = now_iso()
        item = {
            **{k: v for k, v in version.items() if v is not None},
            "pk": asset_pk(asset_id)["pk"],
            "sk": f"{RESULT_PREFIX}{recorded_at}#{run}",
            "asset_id": asset_id,
            "recorded_at": recorded_at,
        }
        self.table.put_item(Item=item)
        return item

    def result_versions(self, asset_id: str, *, limit: int = 100) -> list[dict[str, Any]]:
        """The asset's result versions, newest first (one query of the asset's partition)."""
        resp = self.table.query(
            KeyConditionExpression="pk = :p AND begins_with(sk, :r)",
            ExpressionAttributeValues={":p": asset_pk(asset_id)["pk"], ":r": RESULT_PREFIX},
            ScanIndexForward=False,
            Limit=limit,
        )
        return [dict(item) for item in resp.get("Items", [])]

    # -- one reprocess at a time per asset --
    def begin_reprocess(self, asset_id: str, run: str, *, replacing: str | None = None) -> None:
        """Claim the asset for reprocess run ``run``; ``replacing`` names a run known to be over.

        Raises ``ReprocessRunning`` when another run holds it, ``CatalogError`` when the asset
        is not in the catalog.
        """
        condition = "attribute_exists(pk) AND attribute_not_exists(#run)"
        values: dict[str, Any] = {":run": run}
        if replacing:
            condition = "attribute_exists(pk) AND (attribute_not_exists(#run) OR #run = :old)"
            values[":old"] = replacing
        try:
            self.table.update_item(
                Key=asset_pk(asset_id),
                UpdateExpression="SET #run = :run",
                ConditionExpression=condition,
                ExpressionAttributeNames={"#run": REPROCESS_RUN},
                ExpressionAttributeValues=values,
            )
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            current = self.get_asset(asset_id)
            if current is None:
                raise CatalogError(f"asset {asset_id} is not in the catalog") from err
            raise ReprocessRunning(asset_id, str(current.get(REPROCESS_RUN))) from err

    def end_reprocess(self, asset_id: str, run: str, *, error: str | None = None) -> None:
        """Release the claim of ``run`` (a no-op when another run holds it or none does);
        ``error`` records why the run failed (the asset's previous results stay valid)."""
        sets = "SET last_reprocess_error = :e" if error else ""
        removes = "REMOVE #run" + ("" if error else ", last_reprocess_error")
        values: dict[str, Any] = {":run": run}
        if error:
            values[":e"] = error[:MAX_REASON_LEN]
        try:
            self.table.update_item(
                Key=asset_pk(asset_id),
                UpdateExpression=f"{sets} {removes}".strip(),
                ConditionExpression="#run = :run",
                ExpressionAttributeNames={"#run": REPROCESS_RUN},
                ExpressionAttributeValues=values,
            )
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    # -- tasks waiting for an S3 restore (the reprocess of an archived raw object) --
    def put_restore_waiter(
        self, bucket: str, key: str, run: str, token: str, *, asset_id: str
    ) -> None:
        self.table.put_item(
            Item={
                "pk": restore_pk(bucket, key),
                "sk": f"RUN#{run}",
                "task_token": token,
                "asset_id": asset_id,
                "run": run,
                "stored_at": now_iso(),
                TTL_ATTRIBUTE: int(time.time()) + RESTORE_WAITER_TTL_S,
            }
        )

    def restore_waiters(self, bucket: str, key: str) -> list[dict[str, Any]]:
        resp = self.table.query(
            KeyConditionExpression="pk = :p",
            ExpressionAttributeValues={":p": restore_pk(bucket, key)},
            ConsistentRead=True,
        )
        return [dict(item) for item in resp.get("Items", [])]

    def delete_restore_waiter(self, bucket: str, key: str, run: str) -> None:
        self.table.delete_item(Key={"pk": restore_pk(bucket, key), "sk": f"RUN#{run}"})
