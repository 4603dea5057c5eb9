"""Starting the service the way ``make run`` does, and keeping its serve configs in step.

- ``python -m stemforge.launch [CONFIG]``: choose a serve config for the mode and the machine
  (``choice``), check within seconds that it can start here (``preflight``: resources, routed
  engines, the MusicGen checkpoint), then run ``serve run CONFIG`` and watch it until the
  application is RUNNING (``watch``), failing with Serve's own message when it cannot get there.
- ``python -m stemforge.launch.generate``: write the variant configs from serve_config.yaml
  (``variants``; ``make configs``).

Everything but ``serving`` and ``watch``'s polling is plain logic on dictionaries, tested without
Ray.
"""
