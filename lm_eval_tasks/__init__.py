"""lm-eval tasks for value steering: ValueBench role-play questionnaires (Kang et al.), Schwartz value
dilemmas (ConVA) and MMLU subsets. The YAMLs in this folder are found by lm-eval with no
``--include_path`` once the package is installed (see steering_models/_bootstrap.py)."""
