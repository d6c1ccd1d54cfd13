"""The edge uploader: gets media files from a camera host or an edge box into the pipeline.

It talks only to the pipeline's jobs API (an API Gateway HTTP API with IAM auth) and to the
presigned S3 URLs that API hands out, so the edge device needs no S3 permissions of its own:
its IAM principal may create jobs and nothing else. See ``docs/uploader.md``.

Modules, leaves first: ``errors``, ``retry`` (jittered backoff), ``ratelimit`` (token bucket),
``progress`` (a stderr bar), ``files`` (checksums, content types, discovery), ``state`` (what was
uploaded, what is in flight), ``api`` (the signed jobs client), ``uploader`` (one file, single PUT
or resumable multipart), ``watch`` (a folder) and ``cli``.
"""

from __future__ import annotations

__version__ = "0.1.0"
