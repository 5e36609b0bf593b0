"""The ground layer: settings, storage access and its checks, the sandbox wrapper.

Everything else in labcommons builds on these; they import nothing of the project.
"""
