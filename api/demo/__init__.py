"""The demo city (``nofei demo``): a synthetic Xining, deterministic for a seed.

``city.plan_city`` builds units, ledgers and manifests in memory (pure); ``load`` puts them into a
database through the same use cases an enterprise and a regulator would drive.
"""
