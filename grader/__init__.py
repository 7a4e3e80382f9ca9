"""Autograder for the deployment module: stage contracts run against a sandboxed submission."""

__version__ = "1.0.0"
