"""Fixtures shared by the ingest tests."""

from .s3_moto import bucket_options, moto, s3_env  # noqa: F401 - the S3 store's fixtures
