"""The hand-off to JupyterHub: "Open in Jupyter" (jupyter.py), the starter notebooks it writes
(starter.py), the spawn progress relay (progress.py), the portal as the hub's OAuth2 provider
(oauth.py) and the readable projects a Kubernetes hub asks for (whoami.py)."""
