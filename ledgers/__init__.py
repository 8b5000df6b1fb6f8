"""Use cases on ledgers, manifests and the registry. One function per use case, keyword-only
``uow`` and ``actor``, one transaction each. Imports only ``nofei``."""
