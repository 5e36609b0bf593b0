"""The portal's workflow pages' helpers: service calls (service.py), pure widgets (widgets.py),
pure figures (figures.py) and the step-log download (logs.py)."""
