"""The explorer's parts: the view state and its URL (state.py), pure figures (figures.py), the
service calls behind each panel (queries.py), the experiments browser and measurement page's
calls (browse.py) and widgets (widgets.py), and downloads of the current view (exports.py)."""
