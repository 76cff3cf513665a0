"""Flash storage: layout, quota, the spool of segments, and start-up reconciliation."""

from .component import StorageComponent
from .layout import StateLayout
from .quota import QuotaLedger, StorageFigures
from .reconcile import ReconcileReport, reconcile
from .spool import SegmentStart, Spool, SpoolSegment

__all__ = [
    "QuotaLedger",
    "ReconcileReport",
    "SegmentStart",
    "Spool",
    "SpoolSegment",
    "StateLayout",
    "StorageComponent",
    "StorageFigures",
    "reconcile",
]
