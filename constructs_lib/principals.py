"""Service principals that may act only for this account."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import IConstruct


def account_service_principal(scope: IConstruct, service: str) -> iam.ServicePrincipal:
    """``service`` acting on behalf of this stack's account only.

    The ``aws:SourceAccount`` condition is the confused-deputy guard: without it, the service
    could assume the role (or publish to the topic) on behalf of any account that names it.
    """
    return iam.ServicePrincipal(
        service, conditions={"StringEquals": {"aws:SourceAccount": cdk.Stack.of(scope).account}}
    )
