"""Uploading sealed segments to the back end while docked (docs/upload.md is normative).

`tus` speaks tus 1.0.0 over httpx with mutual TLS; `worker` runs one dock's uploads against
storage's UploadQueue (receipt first, URL journalled before the first PATCH, deletion only
against a verified receipt); `component` starts and cancels the worker on the dock and
recording signals; `progress` is what status shows; `settings` checks the `[upload]`
section; `csr` makes the device's TLS key and request. Nothing is imported here, so that
`bodycamctl` can render progress without loading httpx.
"""
