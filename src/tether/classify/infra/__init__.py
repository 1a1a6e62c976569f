"""Infrastructure and cloud CLIs, one module per family: ``iac`` (terraform, pulumi, cdk, serverless, ansible),
``kube``, ``aws``, ``gcloud``, ``azure``, ``docker``, ``paas`` (hosting platforms, deployers, vaults); ``verbs``
judges a cloud verb alone.

Records the account a command acts on (``aws:<profile>``, ``kube:<context>``, ``gcloud:<project>``,
``az:<subscription>``) and the hosts it talks to.
"""

from __future__ import annotations

from typing import Final

from tether.classify.infra import aws, azure, docker, gcloud, iac, kube, paas
from tether.classify.scan import Handler

HANDLERS: Final[dict[str, Handler]] = {}
for _family in (iac, kube, aws, gcloud, azure, docker, paas):
    HANDLERS.update(_family.HANDLERS)
