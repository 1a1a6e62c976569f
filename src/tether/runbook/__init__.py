"""The runbook: one file describing a host and its agents (models, loader, example)."""

from tether.runbook.load import LoadedRunbook, load, parse
from tether.runbook.model import Agent, Runbook

__all__ = ["Agent", "LoadedRunbook", "Runbook", "load", "parse"]
