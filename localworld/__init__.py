"""A local world for the pipeline: the synthesized stacks, deployed into moto, run in-process.

Test, demo and benchmark infrastructure only; product code (``app.py``, ``stacks/``,
``constructs_lib/``, ``lambdas/``) never imports it.

* ``template``: synthesize the CDK app and resolve ``Ref``/``Fn::GetAtt``/``Fn::Join``/
  ``Fn::GetStackOutput`` against what was created.
* ``deploy``: create the Stateful and Pipeline stacks' resources in moto (a tiny CloudFormation).
* ``runtime``: Lambda functions run in-process from ``lambdas/`` (moto needs Docker otherwise).
* ``interpreter``: narrow patches of moto's Step Functions interpreter (simulated clock for Wait,
  Retry, ``.sync`` polls, task-token heartbeats and timeouts; ``SendTaskFailure`` keeps its
  cause; ``mediaconvert:createJob.sync``).
* ``clock``: simulated time; it stands still while real work (encoding, a handler) runs.
* ``media``: real fixture clips encoded with PyAV (deterministic, cached under ``.cache/``), and
  what a service reads from a video file (probe, shots, black frames, the scene drawn).
* ``transcoder`` / ``mediaconvert``: a MediaConvert stand-in that really transcodes what the job
  settings say (MP4 proxy, HLS segments and playlists, JPEG frame captures).
* ``rekognition``: a Rekognition Video stand-in that really looks at the video.
* ``sources``: Wikimedia Commons and Pixabay answered from those fixtures (no network).
* ``api_gateway``: the deployed HTTP API (the jobs API) served on loopback as API Gateway v2
  serves it: routes, ``AWS_IAM`` SigV4 authentication and ``execute-api:Invoke`` decided by the
  caller's IAM policies, the payload format 2.0 event, the function's resource policy, the 2.0
  response, the 10 MB payload limit and the stage's throttling, with API Gateway's error answers.
* ``s3_guard``: S3's checks in front of the world's moto server (presigned URL signatures and
  expiry, ``x-amz-checksum-sha256``, lengths), and the objects that arrived over HTTP, which the
  world announces with S3's "Object Created" EventBridge event.
* ``glacier``: S3's archive tiers: lifecycle transitions (``World.archive``), ``RestoreObject``
  with the service's answers (202/200/409/403), restores that take the tier's promised hours of
  simulated time, and the "Object Restore Completed" event routed through EventBridge's rules.
* ``world``: all of it together, plus runs, history, state-transition counts, EventBridge
  ``rate()`` schedules (the heartbeat sweep) on the simulated clock, and fault switches.

Where a stand-in is not faithful (each module says so in its docstring):

* CloudFront (``deploy``) is recorded, not served: the distribution, its origin access control,
  policies and key group get ids in CloudFront's formats and a ``*.cloudfront.net`` name so the
  templates resolve, but nothing answers there (no caching, headers, signed cookies or logs);
  the world hands out presigned S3 links instead.

* S3 restores (``glacier``) take the tier's upper bound, not a distribution, and cost nothing;
  retrieval quotas are not modelled.

* The jobs API (``api_gateway``, served with ``WorldOptions.server_port``): JWT (Cognito) and
  Lambda authorizers are not served (an environment with ``api.cognito`` on gets its routes
  skipped at deploy, so they answer 404), nor are payload format 1.0, non-Lambda integrations,
  CORS preflights, custom domains, mutual TLS, SigV4 in the query string or the 30 s integration
  timeout; the throttle is a token bucket per route in this process (AWS's is distributed and
  approximate, with an account-wide limit on top); error messages do not mask account ids.
  ``domainName`` is the API's ``execute-api`` host, which the loopback address stands in for.
* The world's server is plain HTTP on 127.0.0.1 but stands in for S3's HTTPS endpoint
  (``aws:SecureTransport`` is true for its requests, so the templates' ``enforceSSL`` policies
  allow them). Presigned URLs are checked only for keys the world knows (IAM users, STS sessions,
  its administrator and the stand-in keys ``local``/``testing``); requests signed in the
  ``Authorization`` header are left to moto and the world's IAM. Only objects that arrive over
  HTTP are announced to EventBridge ("Object Created"; no "Object Deleted" or tagging events);
  what handlers write in-process is not, and ``World.upload`` returns its event for the test
  to deliver.

* Rekognition's labels come from a table of what each fixture scene shows, not from a model;
  shots, black frames, ``VideoMetadata`` and timings are measured on the decoded video.
* MediaConvert's rate control (QVBR) is approximated with x264's CRF, quality tuning and
  scene-change settings are ignored, and its error messages for unreadable inputs are the ones
  AWS documents for error 1010 (a truncated file may get another 104x code on AWS).
* The ``.ogv`` fixture is VP8 + Vorbis in Ogg, not Theora (this FFmpeg build has no Theora
  encoder); ingest never downloads it, as it takes the WebM derivative.
* Simulated durations are a model, not a measurement. A MediaConvert job takes ``MIN_JOB_S``
  (20 s: queueing and the input probe) plus ``SECONDS_PER_MEGAPIXEL`` per megapixel it encodes
  (width x height x frames of every video output, plus its frame captures), calibrated so that
  the repository's full job for a 1080p 30 fps source takes 0.5 s per second of source; a
  proxy-only job is therefore much shorter than the full ladder. Real MediaConvert speed also
  depends on the codec, QVBR and multi-pass settings, acceleration and the queue's load.
  A Rekognition Video job takes ``REK_MIN_S`` (30 s) plus 1 s per second of video (an
  assumption: AWS publishes no speed; queueing for the account's concurrent-job quota is not
  modelled); unreadable videos fail after ``REK_MIN_S``, and ``analysis_duration_s`` fixes every
  job's time instead. Both stand-ins record each job (``job_records()``) and expose the estimate
  they use (``estimate_job_seconds``, ``estimate_analysis_seconds``). ``.sync`` GetJob polls
  come every ``SYNC_POLL_S`` (1 s); handler run time and encoding take no simulated time.
"""

import os

from localworld.world import RunResult, World, WorldOptions

__all__ = ["RunResult", "World", "WorldOptions", "use_local_environment"]


def use_local_environment() -> None:
    """What a script that runs a local world sets first, unless the caller set it already.

    boto3 signs every call and needs a region, so stand-in keys (the world accepts any) spare
    the user a profile; jsii's end-of-life banner for Node 20 would bury the script's output.
    """
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
