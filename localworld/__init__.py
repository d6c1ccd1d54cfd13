"""A local world for the pipeline: the synthesized stacks, deployed into moto, run in-process.

Test, demo and benchmark infrastructure only; product code (``app.py``, ``stacks/``,
``constructs_lib/``, ``lambdas/``) never imports it.

* ``template``: synthesize the CDK app and resolve ``Ref``/``Fn::GetAtt``/``Fn::Join``/
  ``Fn::GetStackOutput`` against what was created.
* ``deploy``: create the Stateful and Pipeline stacks' resources in moto (a tiny CloudFormation).
* ``runtime``: Lambda functions run in-process from ``lambdas/`` (moto needs Docker otherwise).
* ``interpreter``: narrow patches of moto's Step Functions interpreter (simulated clock for Wait
  and Retry, ``mediaconvert:createJob.sync``).
* ``rekognition`` / ``mediaconvert``: stand-ins for the services moto lacks, with real shapes.
* ``sources``: Wikimedia Commons and Pixabay answered from local fixtures (no network).
* ``world``: all of it together, plus runs, history and state-transition counts.
"""

from localworld.world import RunResult, World, WorldOptions

__all__ = ["RunResult", "World", "WorldOptions"]
