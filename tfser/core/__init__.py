"""Pieces shared by the training tasks: run-directory guard (run_guard), entry-point errors
and logging (cli)."""
