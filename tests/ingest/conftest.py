"""Fixtures shared by the ingest tests."""

from .s3_moto import (  # noqa: F401 - the S3 store's fixtures
    bucket_options,
    moto,
    moto_small_parts,
    s3_env,
    small_parts,
)
