"""Engines that run WorkflowTemplates: local processes or an Argo Server."""
