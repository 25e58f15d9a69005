"""Experiments: variations of a spec (`--set` overrides), their search spaces (`choice`,
`range`, `log_range`), hyperparameter search with Optuna (`specc tune`) and the list of
runs under a folder (`specc runs`). See docs/experiments.md."""
