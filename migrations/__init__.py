"""Scripts that copier's `_migrations` (copier.yml) run during `copier update`."""
