"""Mutual TLS: every way in without a valid, enrolled, unrevoked device certificate is
refused, and audited."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import pytest
import trustme

from bodycamd.ingest.app import running_ingest

from .helpers import Rig, encode_metadata, run_cli, wait_for_event


async def _options(rig: Rig, url: str, context: ssl.SSLContext) -> httpx.Response:
    async with httpx.AsyncClient(verify=context, timeout=10) as client:
        return await client.options(f"{url}/files/")


async def test_no_client_certificate_is_refused_and_audited(rig: Rig) -> None:
    async with running_ingest(rig.config, port=0) as server:
        with pytest.raises(httpx.TransportError):
            await _options(rig, server.url, rig.client_context(None))
        [entry] = await wait_for_event(rig, "tls.refused")
    fields: Any = entry["fields"]
    assert "CERTIFICATE" in fields["reason"]
    assert fields["peer"].startswith("127.0.0.1:")


async def test_certificate_from_another_ca_is_refused_and_audited(rig: Rig) -> None:
    rig.enroll("cam-1")
    impostor = trustme.CA().issue_cert("cam-1", common_name="cam-1")
    context = rig.client_context(None)
    impostor.configure_cert(context)
    async with running_ingest(rig.config, port=0) as server:
        with pytest.raises(httpx.TransportError):
            await _options(rig, server.url, context)
        [entry] = await wait_for_event(rig, "tls.refused")
    fields: Any = entry["fields"]
    assert "CERTIFICATE_VERIFY_FAILED" in fields["reason"]


async def test_tls_below_1_3_is_refused(rig: Rig) -> None:
    camera = rig.enroll("cam-1")
    context = rig.client_context(camera)
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    async with running_ingest(rig.config, port=0) as server:
        with pytest.raises(httpx.TransportError):
            await _options(rig, server.url, context)
        await wait_for_event(rig, "tls.refused")


async def test_revoked_device_is_refused_and_audited(rig: Rig) -> None:
    camera = rig.enroll("cam-1")
    async with running_ingest(rig.config, port=0) as server:
        async with rig.client(camera, server.url) as client:
            assert (await client.options("/files/")).status_code == 204
            assert run_cli(["revoke", "-c", str(rig.directory), "cam-1"]) == 0
            refused = await client.options("/files/")
        assert refused.status_code == 403
        assert "revoked" in refused.text
        [entry] = await wait_for_event(rig, "device.refused")
        await wait_for_event(rig, "device.revoked")
    assert entry["fields"]["device"] == "cam-1"  # type: ignore[index]


async def test_certificate_replaced_by_re_enrolment_is_refused(rig: Rig) -> None:
    old = rig.enroll("cam-1")
    assert run_cli(["revoke", "-c", str(rig.directory), "cam-1"]) == 0
    rig.enroll("cam-1", again=True)
    async with running_ingest(rig.config, port=0) as server:
        async with rig.client(old, server.url) as client:
            refused = await client.options("/files/")
    assert refused.status_code == 403
    assert "replaced" in refused.text


async def test_device_uploading_another_devices_segment_is_refused_and_audited(rig: Rig) -> None:
    owner, other = rig.enroll("cam-1"), rig.enroll("cam-2")
    sealed = owner.segment()
    async with running_ingest(rig.config, port=0) as server:
        async with rig.client(other, server.url) as client:
            created = await client.post(
                "/files/",
                headers={
                    "Upload-Length": str(sealed.size),
                    "Upload-Metadata": encode_metadata(owner.metadata(sealed)),
                },
            )
        assert created.status_code == 403
        assert "names device 'cam-1'; this is 'cam-2'" in created.text
        [entry] = await wait_for_event(rig, "upload.refused")
    assert entry["fields"]["device"] == "cam-2"  # type: ignore[index]


async def test_a_device_sees_neither_uploads_nor_receipts_of_another(rig: Rig) -> None:
    owner, other = rig.enroll("cam-1"), rig.enroll("cam-2")
    sealed = owner.segment()
    data = sealed.path.read_bytes()
    async with running_ingest(rig.config, port=0) as server:
        async with rig.client(owner, server.url) as client:
            created = await client.post(
                "/files/",
                content=data,
                headers={
                    "Upload-Length": str(sealed.size),
                    "Upload-Metadata": encode_metadata(owner.metadata(sealed)),
                    "Content-Type": "application/offset+octet-stream",
                },
            )
            assert created.status_code == 201
            assert created.headers["Upload-Offset"] == str(sealed.size)
            assert (await client.get(f"/receipts/{sealed.digest.hex()}")).status_code == 200
            pending = await client.post(
                "/files/",
                headers={
                    "Upload-Length": str(sealed.size),
                    "Upload-Metadata": encode_metadata(owner.metadata(sealed)),
                },
            )
        async with rig.client(other, server.url) as client:
            assert (await client.get(f"/receipts/{sealed.digest.hex()}")).status_code == 404
            assert (await client.head(pending.headers["Location"])).status_code == 404
            assert (await client.delete(pending.headers["Location"])).status_code == 404
