"""Argo WorkflowTemplates, the programs their steps run, and the engines that run them."""
