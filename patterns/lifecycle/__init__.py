"""A key's life after it is created: rotation, age reminders and incident response.

Scanning and notebook cleaning live in :mod:`patterns.scanning` (standard library only, so
a pre-commit hook needs nothing else); this package holds the tools that act on keys.
"""
