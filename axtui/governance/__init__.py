"""Governance: what keys and teams may do, and the audit trail of every admin change.

`policy` is pure (allow-lists, expiry); `teams` and `audit` read and write the store.
"""
