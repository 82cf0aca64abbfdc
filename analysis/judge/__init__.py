"""The analysis side of the judge: re-judging logged samples (``python -m analysis judge``), agreement
between judges (``judge-agreement``), the judged-records report and serving a model as an
OpenAI-compatible endpoint (``judge-serve``). The judge client itself (settings, backends, cache,
templates, parsers) is :mod:`lm_eval_tasks.judge`, on the ground floor beside the tasks that call it."""
