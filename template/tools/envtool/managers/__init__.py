"""One module per `env_manager` choice of copier.yml (the one list of managers), each defining
MANAGER, its base.Manager subclass: adding a manager is adding a choice there and a module here."""
