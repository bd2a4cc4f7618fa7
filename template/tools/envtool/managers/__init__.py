"""One module per environment manager, named after its `env_manager` choice in copier.yml (the
one list of managers); each defines MANAGER, its `base.Manager` subclass (base.manager_class).
Adding a manager is adding a choice there and a module here."""
