"""Analysis of lm-eval sample logs: orientations, causal value graphs, the papers' metrics and tables,
judge passes, plots, reports, leaderboards and regression checks. Never loads the evaluated model."""
