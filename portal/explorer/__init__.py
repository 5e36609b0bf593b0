"""The explorer's parts: the view state and its URL (state.py), pure figures and widgets
(figures.py), and the service calls behind each panel (queries.py)."""
