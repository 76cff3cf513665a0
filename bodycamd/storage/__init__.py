"""Flash storage: layout, quota, the spool of segments, start-up reconciliation, and the
`Storage` façade through which everything else reaches them (docs/architecture.md)."""

from .component import StorageComponent
from .facade import Figures, RecordingStorage, Storage
from .layout import StateLayout
from .quota import QuotaLedger, StorageFigures
from .reconcile import ReconcileReport, reconcile
from .spool import SegmentStart, Spool, SpoolSegment

__all__ = [
    "Figures",
    "QuotaLedger",
    "ReconcileReport",
    "RecordingStorage",
    "SegmentStart",
    "Spool",
    "SpoolSegment",
    "StateLayout",
    "Storage",
    "StorageComponent",
    "StorageFigures",
    "reconcile",
]
