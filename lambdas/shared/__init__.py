"""Code shared by every Lambda unit: S3 key layout, catalog access, errors.

Bundled beside each unit (``lambdas/shared`` + ``lambdas/<unit>``) so handlers import it the same
way in tests, in the local run and on AWS.
"""
