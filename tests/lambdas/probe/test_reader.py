"""S3RangeReader against moto S3: ranged reads, seeks, the block cache, budget and errors."""

from __future__ import annotations

import io
import re

import pytest

from lambdas.probe.reader import (
    ObjectChanged,
    ObjectGone,
    ObjectReadError,
    ReadBudgetExceeded,
    S3RangeReader,
)
from tests.lambdas.conftest import client

DATA = bytes(range(256)) * 4096  # 1 MiB, every byte's value is its offset mod 256


def _reader(bucket: str, key: str = "blob.bin", data: bytes = DATA, **options) -> S3RangeReader:
    s3 = client("s3")
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    head = s3.head_object(Bucket=bucket, Key=key)
    return S3RangeReader(
        s3, bucket, key, version_id=head.get("VersionId"), size=head["ContentLength"], **options
    )


def test_reads_and_seeks_like_a_file(raw_bucket):
    reader = _reader(raw_bucket, block_size=64 * 1024)
    assert reader.readable() and reader.seekable() and not reader.writable()
    assert reader.read(4) == DATA[:4]
    assert reader.tell() == 4
    assert reader.seek(10, io.SEEK_CUR) == 14
    assert reader.read(3) == DATA[14:17]
    assert reader.seek(-5, io.SEEK_END) == len(DATA) - 5
    assert reader.read(100) == DATA[-5:]
    assert reader.read(1) == b""
    reader.seek(100_000)
    assert reader.read(200_000) == DATA[100_000:300_000]  # spans four blocks: one request
    assert reader.requests == 3
    with pytest.raises(ValueError):
        reader.seek(-1)


def test_cached_blocks_are_not_fetched_again(raw_bucket):
    reader = _reader(raw_bucket, block_size=64 * 1024)
    for _ in range(5):
        reader.seek(0)
        reader.read(1000)
        reader.seek(-1000, io.SEEK_END)
        reader.read(1000)
    assert reader.requests == 2
    assert reader.bytes_read == 2 * 64 * 1024


def test_lru_evicts_the_oldest_block(raw_bucket):
    reader = _reader(raw_bucket, block_size=64 * 1024, cached_blocks=2)
    for offset in (0, 65536, 131072, 0):
        reader.seek(offset)
        reader.read(10)
    assert reader.requests == 4


def test_budget_is_a_hard_limit(raw_bucket):
    reader = _reader(raw_bucket, block_size=256 * 1024, max_bytes=512 * 1024)
    reader.read(512 * 1024)
    with pytest.raises(ReadBudgetExceeded, match="budget of 524288 bytes") as caught:
        reader.read(1)
    assert isinstance(caught.value, ObjectReadError)
    assert "s3://media-raw-test/blob.bin" in str(caught.value)
    assert reader.bytes_read == 512 * 1024


def test_deleted_after_head_names_the_key(raw_bucket):
    reader = _reader(raw_bucket, key="uploads/gone.mp4")
    client("s3").delete_object(Bucket=raw_bucket, Key="uploads/gone.mp4")
    with pytest.raises(
        ObjectGone, match=r"s3://media-raw-test/uploads/gone\.mp4: no longer exists"
    ):
        reader.read(10)


def test_deleted_version_in_a_versioned_bucket(raw_bucket):
    s3 = client("s3")
    s3.put_bucket_versioning(Bucket=raw_bucket, VersioningConfiguration={"Status": "Enabled"})
    reader = _reader(raw_bucket, key="v.mp4")
    assert reader.version_id
    s3.delete_object(Bucket=raw_bucket, Key="v.mp4", VersionId=reader.version_id)
    with pytest.raises(ObjectGone, match=re.escape("v.mp4")):
        reader.read(10)


def test_version_is_pinned_when_the_key_is_overwritten(raw_bucket):
    s3 = client("s3")
    s3.put_bucket_versioning(Bucket=raw_bucket, VersioningConfiguration={"Status": "Enabled"})
    reader = _reader(raw_bucket, key="v.mp4")
    s3.put_object(Bucket=raw_bucket, Key="v.mp4", Body=b"x" * len(DATA))
    assert reader.read(8) == DATA[:8]


def test_overwrite_in_an_unversioned_bucket_is_caught_by_etag(raw_bucket):
    s3 = client("s3")
    s3.put_object(Bucket=raw_bucket, Key="o.mp4", Body=DATA)
    head = s3.head_object(Bucket=raw_bucket, Key="o.mp4")
    s3.put_object(Bucket=raw_bucket, Key="o.mp4", Body=b"y" * 100)
    reader = S3RangeReader(
        s3, raw_bucket, "o.mp4", version_id=None, size=head["ContentLength"], etag=head["ETag"]
    )
    with pytest.raises(ObjectChanged, match=re.escape("o.mp4")):
        reader.read(10)
