"""The annotators task (Tavernor et al.): modelling individual annotators, DiffKDE."""
