"""CDK stacks and stages: thin wiring of the constructs in ``constructs_lib``."""
