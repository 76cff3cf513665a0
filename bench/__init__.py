"""`make bench`: figures measured as ratios against a ceiling or a peer in the same run."""

from bodycamd.config import RecorderConfig

# Footage as the camera writes it: a signed checkpoint (padded to 4 KiB, one Ed25519
# signature for the ingest to check) per `recorder.durability_interval` of 10 Mbit/s.
CAMERA_CHECKPOINT_BYTES = int(RecorderConfig().durability_interval * 10e6 / 8)
