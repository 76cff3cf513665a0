"""bodycamd: the software of a body-worn camera built on a Raspberry Pi."""

__version__ = "0.1.0"
