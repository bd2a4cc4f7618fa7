"""copier-mlops environment hook: create the project's environment and prove it imports.

Run by copier's `_tasks` (copier's own Python, so only the standard library and copier's
dependencies are used) and, in a generated project, by `make env` as `tools/envsetup`.
"""
