"""What every task shares: the run directory and runtime setup (``run``), the resumable fit and
its callbacks (``resumable``), the report arithmetic (``report``) and named experiments
(``registry``). Nothing here knows a task; ``tfser/tasks/<task>/`` builds on it.
"""
