"""The reference ingest service (`bodycamd-ingest`): the back end's front door.

Mutual TLS identifies the camera, tus 1.0.0 carries its sealed segments, the evidence reader
verifies them keylessly against the enrolled device key, and an Ed25519 receipt tells the
camera it may delete its copy. Nodes keep no state: everything lives in an `IngestStore`
(store.py). Requires the `ingest` extra (aiohttp); a camera never installs it.
"""
