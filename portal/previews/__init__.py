"""Previews of a measurement's imzML image, read from the storage root.

- storage.py: a data_file's storage_url as a checked local path (file:// inside the root only).
- imzml.py:   the total-ion-current image, the mean spectrum and single pixels' spectra.
- cache.py:   those arrays computed once per imzML file and kept as .npz under the data dir.
- figures.py: the Plotly figures of the measurement page (pure).

Nothing here decides who may read what: the portal reads only files of a measurement that the
metadata service has just returned to the signed-in user (portal/browse.py).
"""
