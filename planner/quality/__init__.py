"""Quality measurement: HumanEval pass@1 of runtime configurations, run in a sandbox."""
