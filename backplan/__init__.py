"""The ``backplan`` command: a thin click layer over the importable core.

``backplan.cli`` holds the group and the one place that turns errors into exit codes;
``backplan.commands`` one module per command group; ``backplan.printers`` the terminal
tables. The layers below it: ``dashboards`` -> ``planner`` -> ``hardware_catalog`` / ``runtime``.
"""
