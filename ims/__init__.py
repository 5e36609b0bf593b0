"""Imaging mass spectrometry: reading imzML/ibd pairs, what their headers say, whether the two
files belong together, and the images and spectra computed from them.

A domain layer beside metadata/: it imports only ground/ (and numpy, pyimzML), so the portal, the
workflow steps, the notebook helper and the CLI share one reading of the files.
"""
