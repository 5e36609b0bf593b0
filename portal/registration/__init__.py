"""Registering data: the Register pages (pages.py), the form built from the dictionary (form.py),
one dataset with its files (dataset.py), a TSV in bulk (bulk.py) and streamed uploads (uploads.py)."""
