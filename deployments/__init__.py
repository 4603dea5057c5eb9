"""The Ray Serve graph of stemforge, one module per deployment (see serve_config.yaml).

``app`` binds the graph; ``ingress``, ``engine_replica`` and ``uploader`` are its deployments.
Everything they run lives in the ``stemforge`` library.
"""
