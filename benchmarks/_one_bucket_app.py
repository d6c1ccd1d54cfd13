"""Reference CDK app for ``benchmarks.synth``: one stack holding one S3 bucket.

It pays what every CDK app run by the CLI pays (Python and jsii start-up, the Node runtime that
hosts aws-cdk-lib, the same cdk-nag plugins registered on the app, writing the cloud assembly)
and almost nothing else, so the real app's synth time divided by this one's is the cost of the
real app's constructs, whatever the machine. Account and region are read exactly as ``app.py``
reads them, so both synthesize with the same concrete environment.

Run by the CDK CLI only (``cdk synth --app "python benchmarks/_one_bucket_app.py"``), which sets
``CDK_OUTDIR``. ``make bench`` runs every ``benchmarks/<name>.py`` as ``python -m
benchmarks.<name>``, this file too: without ``CDK_OUTDIR`` it says what it is and exits 0, so the
loop spends no synthesis on it.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aws_cdk as cdk


def build_app() -> cdk.App:
    # Imported here, not at the top, so make bench's loop (no CDK_OUTDIR) starts no jsii.
    import aws_cdk as cdk
    from aws_cdk import aws_s3 as s3
    from cdk_nag import AwsSolutionsChecks, ServerlessChecks

    app = cdk.App()
    account = os.environ.get("CDK_DEPLOY_ACCOUNT") or os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = os.environ.get("CDK_DEPLOY_REGION") or os.environ.get("CDK_DEFAULT_REGION")
    stack = cdk.Stack(app, "OneBucket", env=cdk.Environment(account=account, region=region))
    # Compliant with the same cdk-nag packs as the real app, so the reference synthesizes
    # cleanly: TLS-only (a bucket policy) and the one finding a lone bucket cannot fix, access
    # logs (they need a second bucket), acknowledged. It is never deployed.
    bucket = s3.Bucket(stack, "Bucket", enforce_ssl=True)
    cdk.Validations.of(bucket).acknowledge(
        cdk.Acknowledgment(
            id="AwsSolutions-S1",
            reason="Benchmark reference app, never deployed; access logs need a second bucket.",
        )
    )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app), ServerlessChecks(app))
    return app


def main() -> int:
    if "CDK_OUTDIR" not in os.environ:
        print("benchmarks/_one_bucket_app.py: reference app of benchmarks.synth, run by cdk synth")
        return 0
    build_app().synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
