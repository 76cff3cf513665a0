"""Uploading sealed segments to the back end while docked (docs/upload.md is normative).

`tus` speaks tus 1.0.0 over httpx with mutual TLS; `worker` runs one dock's uploads against
storage's UploadQueue (receipt first, URL journalled before the first PATCH, deletion only
against a verified receipt); `component` starts and cancels the worker on the dock and
recording signals; `progress` is what status shows; `settings` checks the `[upload]` section.
"""

from .component import UploadComponent
from .progress import UploadProgress, progress_bar
from .settings import UploadSettings, upload_settings

__all__ = ["UploadComponent", "UploadProgress", "UploadSettings", "progress_bar", "upload_settings"]
