"""What every task shares: the run directory and runtime setup (``run``), the resumable fit and
its callbacks (``resumable``), the report arithmetic (``report``), named experiments
(``registry``), the run-directory guard (``run_guard``) and entry-point errors and logging
(``cli``). Nothing here knows a task; ``tfser/tasks/<task>/`` builds on it.
"""
