"""The administrators' pages: users, grants, tiers and triggers (pages.py) and the audit log (audit.py)."""
