"""labcommons: a research data commons for lab teams.

In scripts and notebooks:

    import labcommons
    lc = labcommons.connect()          # address and token from LABCOMMONS_* settings
    lc.find("atlas-kidney", "case-0001")               # any MetadataClient call
    lc.dataset(measurement_id).tissue_spectra(limit=5) # the notebook helper (labcommons/notebook.py)
    lc.cohort("my cohort").manifest()                  # a pandas DataFrame
    lc.upload("atlas-kidney", "s1.imzML", "s1.ibd", fields={"submitter_id": "s1", ...})  # via the portal
    lc.save_parameter_set(template="ims-preprocess", name="liver-smooth", params={"snr": 2})
"""
from __future__ import annotations

__version__ = "0.1.0"


def connect(host: str | None = None, port: int | None = None, token: str | None = None,
            storage_root=None, portal_url: str | None = None):
    """The notebook helper over a client of the metadata service (labcommons.notebook.Commons);
    arguments override the LABCOMMONS_* settings (portal_url: where `upload` sends files)."""
    from ground import settings as settings_module
    from labcommons.notebook import Commons, hub_token_renewer, notebook_source
    from metadata.client import MetadataClient

    settings = settings_module.load()
    # in a JupyterHub server, an expired token is swapped for the one the hub has renewed
    client = MetadataClient(host or settings.host, port or settings.port, token or resolve_token(settings),
                            renew_token=None if token else hub_token_renewer())
    return Commons(client, storage_root or settings.storage_root, notebook_source(),
                   portal_url or settings.portal_public_url)


def resolve_token(settings) -> str:
    """The caller's token: the token setting (LABCOMMONS_TOKEN), else the local operator's token file
    if readable."""
    if token := settings.token.strip():
        return token
    try:
        return settings.admin_token_path.read_text().strip()
    except OSError:
        raise RuntimeError(
            "no token: set LABCOMMONS_TOKEN (an administrator mints one with `labcommons token create`), "
            f"or run on the service's machine where {settings.admin_token_path} is readable") from None
