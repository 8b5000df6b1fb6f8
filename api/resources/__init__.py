"""One module per resource; every module that defines ``blp`` is registered by ``create_app``."""
