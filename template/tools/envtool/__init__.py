"""copier-mlops environment tool: set-up, doctor, lock and git-init for a generated project.

One package, standard library only: copier's tasks run the project's copy of it (tools/envtool)
with copier's Python, and so does the student, with any Python 3.10+ (`python tools/envtool ...`,
or `make env|doctor|lock`). What needs parsing runs inside the environment, in probe.py.
"""
