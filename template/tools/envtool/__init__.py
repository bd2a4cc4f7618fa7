"""copier-mlops environment tool (standard library only): set-up, doctor, lock and git-init, run
by copier's tasks and as `python tools/envtool ...` / `make env|doctor|lock` on any Python 3.10+."""
