"""The single-user servers' own configuration: the hub points JUPYTER_CONFIG_PATH here (both
spawners), so JupyterLab opens without a build prompt or a news question. Flat settings, each
with its reason; JupyterLab's documented switches, nothing patched. See docs/jupyterhub.md.
"""
from pathlib import Path

c = get_config()  # noqa: F821 -- provided by traitlets when the server loads this file
HERE = Path(__file__).resolve().parent

# overrides.json beside this file sets the notification defaults: news never fetched (no "Would
# you like to get notified about official Jupyter news?" question) and no update check; users may
# still change them in Settings. The default directory (<prefix>/share/jupyter/lab/settings) is empty.
c.LabApp.app_settings_dir = str(HERE / "lab-settings")
# the servers make no request to the news feed or for new versions, whatever a user sets:
# notebooks run next to research data, offline or behind a proxy, and the image pins JupyterLab
c.LabApp.news_url = None
c.LabApp.check_for_updates_class = "jupyterlab.handlers.announcements.NeverCheckForUpdate"
# labconfig/page_config.json beside this file turns off the build check: dash installs its
# JupyterLab extension as a source package (<prefix>/share/jupyter/lab/extensions/dash-jupyterlab.tgz),
# which makes JupyterLab recommend a rebuild on every load; the servers cannot rebuild (the
# environment is read-only to them) and need no rebuild (Plotly figures render with the prebuilt
# jupyterlab-plotly extension)
