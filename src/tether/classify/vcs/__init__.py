"""git and gh: commits and branches, pushes (protected, forced, deleting), PRs, issues, the GitHub API. One module
each: ``git`` (its subcommands), ``remotes`` (remotes and pushes), ``config`` (git's configuration), ``github``
(gh and the GitHub API)."""

from __future__ import annotations

from typing import Final

from tether.classify.scan import Handler
from tether.classify.vcs import git, github

HANDLERS: Final[dict[str, Handler]] = {**git.HANDLERS, **github.HANDLERS}
