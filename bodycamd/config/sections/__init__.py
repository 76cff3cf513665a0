"""The config sections, one module per part of the device that reads them; config/schema.py
assembles them into the root Config."""
