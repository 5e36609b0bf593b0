"""The programs the templates' steps run: `python -m workflow_templates.steps.<name> ...`.

Each is an argparse CLI that reads and writes paths under the storage root given as arguments,
so the same command line runs in an Argo pod (storage mounted at the same path) and as a local
process. Files are written atomically (a `.part` file renamed into place), so a retried step
never sees half a file.
"""
