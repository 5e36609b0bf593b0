"""Previews of a measurement's imzML image, read from its project's folder of the storage root.

- imzml.py:   the total-ion-current image, the mean spectrum and single pixels' spectra.
- cache.py:   those arrays computed once per imzML file and kept as .npz under the data dir, and
              ion images (ims/images.py) kept as .npy, one per file pair and m/z window.
- figures.py: the Plotly figures of the measurement page (pure).

Nothing here decides who may read what: the portal reads only files of a measurement that the
metadata service has just returned to the signed-in user, each resolved in its project's folder by
ground.storage.resolve (portal/explorer/browse.py), and opens them with ground.storage.open_checked.
"""
