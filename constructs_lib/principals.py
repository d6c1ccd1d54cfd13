"""Service principals that may act only for this account."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct


def account_service_principal(scope: IConstruct, service: str) -> iam.ServicePrincipal:
    """``service`` acting on behalf of this stack's account only.

    The ``aws:SourceAccount`` condition is the confused-deputy guard: without it, the service
    could assume the role (or publish to the topic) on behalf of any account that names it.
    """
    return iam.ServicePrincipal(
        service, conditions={"StringEquals": {"aws:SourceAccount": cdk.Stack.of(scope).account}}
    )


def service_role(scope: Construct, role_id: str, service: str, description: str) -> iam.Role:
    """A role that only ``service``, acting for this account, may assume.

    Every role a service assumes on the pipeline's behalf (MediaConvert jobs, Rekognition's
    notices, EventBridge targets) is made here, so none can miss the confused-deputy condition.
    """
    return iam.Role(
        scope,
        role_id,
        assumed_by=account_service_principal(scope, service),
        description=description,
    )
